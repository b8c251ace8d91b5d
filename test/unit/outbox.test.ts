import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { after, afterEach, describe, it } from "node:test";
import Database from "better-sqlite3";
import { DelineateError } from "../../src/errors.js";
import type { JobResult } from "../../src/jobs/job.js";
import { SqliteJobStore } from "../../src/jobs/sqliteStore.js";
import type { Logger } from "../../src/log.js";
import { outboxEntries } from "../../src/notify/facts.js";
import type { Notifier } from "../../src/notify/notifiers.js";
import { withoutPatient } from "../../src/notify/outbox.js";
import { NotificationSender } from "../../src/notify/sender.js";
import { newUid } from "../../src/outputs/uid.js";
import { completedSegmentJob, testFacts } from "../helpers/outboxFixtures.js";
import { stopTestPostgres, TEST_STORE, type TestStore, testStore } from "../helpers/store.js";
import { tempDir } from "../helpers/tools.js";

const opened: TestStore[] = [];
const open = async () => {
  const t = await testStore();
  opened.push(t);
  return t;
};
afterEach(async () => {
  for (const t of opened.splice(0)) await t.dispose();
});
after(stopTestPostgres);

describe("notification outbox", () => {
  it("writes one row per notifier with the job's completion, and never a second for the same result", async () => {
    const { store } = await open();
    const job = await completedSegmentJob(store, "1.2.3", ["hl7", "webhook"]);
    const rows = await store.notifications(job.id);
    assert.deepEqual(rows.map((n) => [n.notifier, n.state, n.attempts]).sort(), [
      ["hl7", "pending", 0],
      ["webhook", "pending", 0],
    ]);
    assert.equal(rows[0]!.payload.organs[0]!.volumeMl, 1523.25);
    assert.equal(rows[0]!.payload.outputs.seg?.sopInstanceUID, job.segment.uids.seg?.sopInstanceUID);
    // a done job is not this attempt's any more: completing it again writes nothing
    const facts = testFacts(job);
    const again: JobResult = {
      kind: "segment",
      executionProvider: "cpu",
      timings: {},
      alreadyStored: true,
      warnings: [],
      facts,
      notifications: outboxEntries(facts, ["hl7", "webhook"]),
    };
    await assert.rejects(store.complete(job, again), (e: DelineateError) => e.code === "DLN_ERR_LEASE_LOST");
    assert.equal((await store.notifications(job.id)).length, 2);
  });

  it("writes one row per (job, notifier, result) even when a completion names it twice", async () => {
    const { store } = await open();
    // the same notifier listed twice for one result: the unique key keeps one row, and the completion succeeds
    const job = await completedSegmentJob(store, "1.2.3.1", ["hl7", "hl7", "webhook"]);
    assert.deepEqual((await store.notifications(job.id)).map((n) => n.notifier).sort(), ["hl7", "webhook"]);
  });

  it("hands each due notification out once, retries after its time, and keeps sent and failed ones", async () => {
    const { store } = await open();
    const job = await completedSegmentJob(store, "1.2.4", ["hl7", "webhook"]);
    const first = await store.claimNotification();
    const second = await store.claimNotification();
    assert.ok(first && second && first.id !== second.id);
    assert.equal(await store.claimNotification(), undefined, "both are being sent");
    const now = Date.now();
    await store.finishNotification(first, {
      state: "pending",
      retryAt: now + 60_000,
      error: { code: "DLN_ERR_NOTIFY_UNAVAILABLE", message: "no ACK" },
    });
    await store.finishNotification(second, { state: "sent" });
    assert.equal(await store.claimNotification(now), undefined, "not due yet");
    const again = await store.claimNotification(now + 61_000);
    assert.equal(again?.id, first.id);
    assert.equal(again?.attempts, 2);
    await assert.rejects(
      store.finishNotification(first, { state: "sent" }),
      (e: DelineateError) => e.code === "DLN_ERR_LEASE_LOST",
      "the first attempt's outcome is fenced off",
    );
    await store.finishNotification(again!, {
      state: "failed",
      error: { code: "DLN_ERR_NOTIFY_REJECTED", message: "AR" },
    });
    const rows = await store.notifications(job.id);
    const byId = new Map(rows.map((n) => [n.id, n]));
    assert.equal(byId.get(second.id)?.state, "sent");
    assert.ok(byId.get(second.id)?.sentAt);
    assert.deepEqual(byId.get(first.id)?.lastError, { code: "DLN_ERR_NOTIFY_REJECTED", message: "AR" });
    assert.equal(await store.claimNotification(now + 10_000_000), undefined);
  });

  it("puts a notification a crash left sending back: at once on one node, after its claim lease in a cluster", async () => {
    const t = await open();
    const job = await completedSegmentJob(t.store, "1.2.5", ["hl7"]);
    const claimed = await t.store.claimNotification();
    assert.ok(claimed);
    await t.store.close();
    const store = await t.reopen({ workerId: "other-node:1" });
    await store.recoverInterrupted();
    let due = Date.now();
    if (TEST_STORE === "postgres") {
      // another node's send may still be in progress: left alone until the claim's lease runs out
      assert.equal(await store.claimNotification(), undefined, "still held by its sender");
      due += 61_000;
    }
    const n = await store.claimNotification(due);
    assert.equal(n?.jobId, job.id);
    assert.equal(n?.attempts, 2);
    await assert.rejects(store.finishNotification(claimed, { state: "sent" }), /lost its/);
    await store.finishNotification(n!, { state: "sent" });
    assert.equal((await store.notifications(job.id))[0]?.state, "sent");
  });
});

describe("outbox migration", () => {
  it("adds the outbox to a fifth-schema store", async () => {
    const dir = tempDir("outbox-");
    try {
      await new SqliteJobStore(path.join(dir, "delineate.sqlite"), () => newUid("2.25")).close();
      const v3 = new Database(path.join(dir, "delineate.sqlite"));
      // a fifth-schema store had neither the outbox nor step 7's superseded_uids column and pushed_replaced table
      v3.exec(
        "DROP TABLE notifications; DROP TABLE pushed_replaced; ALTER TABLE jobs DROP COLUMN superseded_uids; PRAGMA user_version = 5;",
      );
      v3.close();
      const store = new SqliteJobStore(path.join(dir, "delineate.sqlite"), () => newUid("2.25"));
      const job = await completedSegmentJob(store, "1.2.6", ["webhook"]);
      assert.equal((await store.notifications(job.id)).length, 1);
      await store.close();
      const db = new Database(path.join(dir, "delineate.sqlite"));
      assert.equal(db.pragma("user_version", { simple: true }), 7);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("notification sender", () => {
  it("keeps the patient's identifiers a peer quotes back out of the log and the recorded error", async () => {
    const { store } = await open();
    const job = await completedSegmentJob(store, "1.2.9", ["hl7"]);
    const lines: string[] = [];
    const record = (message: string, meta?: unknown) => {
      lines.push(JSON.stringify([message, meta]));
    };
    const log = { info: record, warn: record, error: record } as unknown as Logger;
    // a RIS that refuses the message and, in its MSA-3 text, names the patient the way it read them
    const ris: Notifier = {
      name: "hl7",
      async send() {
        throw new DelineateError(
          "DLN_ERR_NOTIFY_REJECTED",
          "HL7 peer ris:2575 rejected the message (AR) unknown: NOTIFY-17 TEST^PATIENT born 19700101",
        );
      },
    };
    const sender = new NotificationSender(
      store,
      new Map([["hl7", ris]]),
      { maxAttempts: 3, retryBaseSeconds: 1, maxRetrySeconds: 1, idlePollMs: 20 },
      log,
    );
    sender.start();
    let rows = await store.notifications(job.id);
    for (let i = 0; i < 100 && rows[0]?.state !== "failed"; i++) {
      await new Promise((r) => setTimeout(r, 20));
      rows = await store.notifications(job.id);
    }
    await sender.stop();
    assert.equal(rows[0]?.state, "failed");
    assert.equal(rows[0]?.lastError?.code, "DLN_ERR_NOTIFY_REJECTED");
    assert.match(
      rows[0]?.lastError?.message ?? "",
      /unknown: \[redacted\] \[redacted\]\^\[redacted\] born \[redacted\]/,
    );
    const logged = lines.join("\n");
    assert.match(logged, /notification failed/);
    for (const phi of ["NOTIFY-17", "Test", "Patient", "19700101"])
      assert.ok(!new RegExp(phi, "i").test(`${logged}\n${rows[0]?.lastError?.message}`), `${phi} leaked`);
  });

  it("cuts each identifier out, whatever its case, and leaves other words alone", () => {
    const facts = testFacts({ id: "j", studyInstanceUID: "1.2", segment: { seriesInstanceUID: "1.2.1" } } as never);
    assert.equal(
      withoutPatient("AE: test patient (NOTIFY-17, 19700101) not on order ACC-0042", facts),
      "AE: [redacted] [redacted] ([redacted], [redacted]) not on order ACC-0042",
    );
  });
});
