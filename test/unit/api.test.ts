import assert from "node:assert/strict";
import { after, it } from "node:test";
import request from "supertest";
import { DelineateError } from "../../src/errors.js";
import { createApp } from "../../src/server/app.js";
import { stopTestPostgres, testStore } from "../helpers/store.js";

after(stopTestPostgres);

it("lists, cancels and retries jobs behind the token", async () => {
  const t = await testStore();
  const store = t.store;
  await store.enqueue(["1.1", "1.2"]);
  let woken = 0;
  const app = createApp({ store, apiToken: "t0ken", health: () => ({}), onRetry: () => void woken++ });
  const auth = { Authorization: "Bearer t0ken" };
  const [b, a] = await store.list();

  assert.equal((await request(app).get("/healthz")).status, 200, "health needs no token");
  assert.equal((await request(app).get("/api/jobs")).status, 401);
  assert.equal((await request(app).post(`/api/jobs/${a!.id}/cancel`).set("Authorization", "Bearer nope")).status, 401);
  assert.equal((await request(app).get("/api/jobs?state=bogus").set(auth)).status, 400);
  assert.equal((await request(app).get("/api/jobs?kind=bogus").set(auth)).status, 400);
  assert.equal((await request(app).get("/api/jobs?kind=segment").set(auth)).body.length, 0);
  assert.equal((await request(app).get("/api/jobs?kind=route").set(auth)).body.length, 2);

  const cancelled = await request(app).post(`/api/jobs/${a!.id}/cancel`).set(auth);
  assert.deepEqual([cancelled.status, cancelled.body.state], [200, "cancelled"]);
  assert.equal((await request(app).post(`/api/jobs/${a!.id}/cancel`).set(auth)).status, 409, "already cancelled");

  const claimed = (await store.claimNext())!;
  assert.equal(claimed.id, b!.id);
  const asked = await request(app).post(`/api/jobs/${b!.id}/cancel`).set(auth);
  assert.deepEqual([asked.status, asked.body.cancelRequested], [202, true]);
  await store.finishWithError(claimed, "cancelled", new DelineateError("DLN_ERR_CANCELLED", "stopped"));

  const retried = await request(app).post(`/api/jobs/${a!.id}/retry`).set(auth);
  assert.deepEqual([retried.status, retried.body.state, retried.body.attempts], [200, "queued", 0]);
  assert.equal(woken, 1, "a retried job wakes the worker");
  assert.equal(
    (await request(app).post(`/api/jobs/${a!.id}/retry`).set(auth)).status,
    409,
    "queued jobs are not retried",
  );
  assert.equal((await request(app).post("/api/jobs/nope/retry").set(auth)).status, 404);
  assert.deepEqual(
    (await request(app).get("/api/jobs?state=cancelled").set(auth)).body.map((j: { id: string }) => j.id),
    [b!.id],
  );
  await t.dispose();
});

it("pages the job list with a cursor up to a stated maximum, and refuses unknown or repeated parameters", async () => {
  const t = await testStore();
  const studies = Array.from({ length: 250 }, (_, i) => `1.2.${i + 1}`);
  await t.store.enqueue(studies);
  const app = createApp({ store: t.store, apiToken: "t", health: () => ({}) });
  const auth = { Authorization: "Bearer t" };
  const seen: string[] = [];
  let url: string | undefined = "/api/jobs?kind=route&limit=100";
  let pages = 0;
  while (url) {
    const res: request.Response = await request(app).get(url).set(auth);
    assert.equal(res.status, 200, res.text);
    seen.push(...res.body.map((j: { studyInstanceUID: string }) => j.studyInstanceUID));
    pages++;
    url = /^<([^>]+)>; rel="next"$/.exec(String(res.headers.link ?? ""))?.[1];
  }
  assert.equal(pages, 3);
  assert.deepEqual([...seen].sort(), [...studies].sort(), "every job once, none twice (it stopped at 100)");
  assert.equal((await request(app).get("/api/jobs").set(auth)).body.length, 100, "the default page");
  assert.equal((await request(app).get("/api/jobs?limit=500").set(auth)).body.length, 250);
  for (const bad of [
    "limit=501",
    "limit=0",
    "limit=1e2",
    "offset=100",
    "state=done&state=failed",
    "stat=done",
    "study=..",
    "cursor=bogus",
  ]) {
    const res = await request(app).get(`/api/jobs?${bad}`).set(auth);
    assert.equal(res.status, 400, bad);
    assert.match(res.body.code, /^DLN_ERR_(REQUEST|UID)_INVALID$/, bad);
  }
});
