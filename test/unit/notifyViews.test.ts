import assert from "node:assert/strict";
import { it } from "node:test";
import request from "supertest";
import { createApp } from "../../src/server/app.js";
import { jobBody } from "../../src/server/dashboard/pages.js";
import { completedSegmentJob } from "../helpers/outboxFixtures.js";
import { testStore } from "../helpers/store.js";

it("GET /api/jobs/:id and the job page show each notification's state, never its payload", async () => {
  const t = await testStore();
  try {
    const job = await completedSegmentJob(t.store, "1.2.840.99.17.30", ["hl7", "webhook"]);
    const claimed = await t.store.claimNotification();
    assert.ok(claimed);
    await t.store.finishNotification(claimed, {
      state: "pending",
      retryAt: Date.now() + 60_000,
      error: { code: "DLN_ERR_NOTIFY_UNAVAILABLE", message: "HL7 peer 127.0.0.1:2575: no ACK within 30000 ms" },
    });
    const app = createApp({ store: t.store, apiToken: "t0ken", health: () => ({}), onRetry: () => {} });
    const res = await request(app).get(`/api/jobs/${job.id}`).set("Authorization", "Bearer t0ken");
    assert.equal(res.status, 200);
    const ns = res.body.notifications as Record<string, unknown>[];
    assert.deepEqual(ns.map((n) => [n.notifier, n.state]).sort(), [
      ["hl7", "pending"],
      ["webhook", "pending"],
    ]);
    assert.ok(ns.every((n) => !("payload" in n)));
    assert.ok(!JSON.stringify(res.body).includes("NOTIFY-17"), "no patient ID in the API's answer");

    const page = String(
      jobBody({
        job: (await t.store.get(job.id))!,
        csrf: "x",
        related: [],
        audit: { jobs: [], events: [] },
        notifications: await t.store.notifications(job.id),
        now: Date.now(),
      }),
    );
    assert.match(page, /<table data-notifications>/);
    assert.match(page, /data-notifier="hl7" data-state="pending"/);
    assert.match(page, /DLN_ERR_NOTIFY_UNAVAILABLE: HL7 peer 127\.0\.0\.1:2575: no ACK within 30000 ms/);
    assert.ok(!page.includes("NOTIFY-17") && !page.includes("Test^Patient"), "no patient identifiers on the page");
  } finally {
    await t.dispose();
  }
});
