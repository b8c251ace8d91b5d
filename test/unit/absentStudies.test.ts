import assert from "node:assert/strict";
import { after, afterEach, it } from "node:test";
import request from "supertest";
import { DelineateError } from "../../src/errors.js";
import type { JobStore } from "../../src/jobs/jobStore.js";
import { runRouteJob } from "../../src/jobs/routeJob.js";
import { JobWorker } from "../../src/jobs/worker.js";
import { createLogger } from "../../src/log.js";
import type { StudySource } from "../../src/pacs/source.js";
import { resolveRules } from "../../src/route/rules.js";
import { createApp } from "../../src/server/app.js";
import { webhookRouter } from "../../src/server/webhook.js";
import { stopTestPostgres, type TestStore, testStore } from "../helpers/store.js";

const log = createLogger({ level: "error", silent: true });
const opened: TestStore[] = [];
const open = async () => {
  const t = await testStore();
  opened.push(t);
  return t.store;
};
afterEach(async () => {
  for (const t of opened.splice(0)) await t.dispose();
});
after(stopTestPostgres);
/** A PACS that has no study at all. */
const emptyPacs: StudySource = {
  searchSeries: async () => [],
  seriesMetadata: async () => [],
  retrieveSeries: async () => [],
};
const rules = resolveRules(undefined, "ct-a", () => ({ modality: "CT", outputs: ["seg"] }));

it("a route job for a study the PACS does not have waits up to ingest.absentStudySeconds for it, then fails DLN_ERR_STUDY_NOT_FOUND", async () => {
  const store = await open();
  await store.enqueue(["1.2.3"]);
  const route = (job: Parameters<typeof runRouteJob>[0]) =>
    runRouteJob(job, { source: emptyPacs, rules, modelVersion: () => "1", log });
  // it was DLN_ERR_NO_SERIES: skipped at once, and every UID anyone announced left a job behind
  await assert.rejects(
    route({ ...(await store.list())[0]!, kind: "route" }),
    (e: unknown) => e instanceof DelineateError && e.code === "DLN_ERR_STUDY_NOT_FOUND" && /1\.2\.3/.test(e.message),
  );
  const looked: number[] = [];
  // when each wait was set to end: the store's own record of the retries, not how fast this machine ran them
  const retryAt: number[] = [];
  const recording: JobStore = Object.create(store, {
    finishWithError: {
      value: (...a: Parameters<JobStore["finishWithError"]>) => {
        if (a[1] === "queued") retryAt.push(a[3] ?? 0);
        return store.finishWithError(...a);
      },
    },
  });
  const worker = new JobWorker(
    recording,
    async (job) => {
      looked.push(Date.now());
      if (job.kind !== "route") throw new Error("only route jobs here");
      return route(job);
    },
    { concurrency: 1, maxAttempts: 1, retryBaseSeconds: 0.02, idlePollMs: 5, heartbeatMs: 1000, absentStudyMs: 400 },
    log,
  );
  const made = (await store.list())[0]!.createdAt;
  worker.start();
  for (let i = 0; i < 400 && (await store.list())[0]?.state !== "failed"; i++)
    await new Promise((r) => setTimeout(r, 10));
  await worker.stop();
  const [job] = await store.list();
  assert.equal(job?.state, "failed");
  assert.equal(job?.error?.code, "DLN_ERR_STUDY_NOT_FOUND");
  assert.ok(looked.length > 1, "looked again while waiting, whatever jobs.maxAttempts says");
  assert.ok(looked.at(-1)! - made >= 400, "not before its time was up");
  // nor long after: no wait was set past the deadline (the last look is the first one at or after it); backoff alone
  // (0.02 s doubling per attempt) would have set waits far past it
  assert.ok(retryAt.length > 1, "it waited");
  for (const at of retryAt) assert.ok(at <= made + 400, `a wait set to end ${at - made} ms after the job was made`);
  assert.ok(
    looked.slice(0, -1).every((t) => t < made + 400),
    "every look before the last was before the deadline",
  );
});

it("fails a pushed study with no files at once, and caps webhook announcements at ingest.maxPendingStudies (429)", async () => {
  const store = await open();
  await store.enqueue(["1.2.4"], undefined, "pushed");
  const worker = new JobWorker(
    store,
    async (job) => {
      if (job.kind !== "route") throw new Error("only route jobs here");
      return runRouteJob(job, { source: emptyPacs, rules, modelVersion: () => "1", log });
    },
    { concurrency: 1, maxAttempts: 5, retryBaseSeconds: 1, idlePollMs: 5, heartbeatMs: 1000, absentStudyMs: 60_000 },
    log,
  );
  worker.start();
  for (let i = 0; i < 200 && (await store.list())[0]?.state === "queued"; i++)
    await new Promise((r) => setTimeout(r, 10));
  await worker.stop();
  assert.deepEqual(
    [(await store.list())[0]?.state, (await store.list())[0]?.error?.code],
    ["failed", "DLN_ERR_STUDY_NOT_FOUND"],
  );

  const app = createApp({
    store,
    apiToken: "t0ken",
    log,
    health: () => ({}),
    apiRouters: {
      "/webhook": webhookRouter({
        announce: (uid) => store.enqueue([uid]),
        pending: { count: () => store.pendingRoutes("pacs"), max: 3 },
        log,
      }),
    },
  });
  const announce = (uid: string) =>
    request(app).post("/api/webhook/stable-study").set("Authorization", "Bearer t0ken").send({ StudyInstanceUID: uid });
  for (const uid of ["1.3.1", "1.3.2", "1.3.3"]) assert.equal((await announce(uid)).status, 201);
  // it was 201 for every UID: a script could queue studies that do not exist without end
  const refused = await announce("1.3.4");
  assert.equal(refused.status, 429);
  assert.equal(refused.body.code, "DLN_ERR_INGEST_BUSY");
  assert.ok(Number(refused.get("Retry-After")) > 0);
  assert.equal(await store.pendingRoutes("pacs"), 3, "no job was made for it");
  assert.equal(await store.pendingRoutes("pushed"), 0, "counted per source");
  await store.claimNext(); // one routed: room for one more
  assert.equal((await announce("1.3.4")).status, 201);
});

it("deletes route jobs that failed DLN_ERR_STUDY_NOT_FOUND once past their retention, and no other job", async () => {
  const store = await open();
  await store.enqueue(["1.4.1", "1.4.2", "1.4.3"]);
  const notFound = new DelineateError("DLN_ERR_STUDY_NOT_FOUND", "the PACS has no series of study");
  const [a, b, c] = [await store.claimNext(), await store.claimNext(), await store.claimNext()];
  await store.finishWithError(a!, "failed", notFound);
  await store.finishWithError(b!, "failed", new DelineateError("DLN_ERR_PACS_REJECTED", "400"));
  await store.finishWithError(c!, "queued", notFound, Date.now() + 60_000); // still waiting for its study
  assert.equal(await store.deleteFailedRoutes("DLN_ERR_STUDY_NOT_FOUND", Date.now() - 60_000), 0, "not yet");
  assert.equal(await store.deleteFailedRoutes("DLN_ERR_STUDY_NOT_FOUND", Date.now() + 1), 1);
  assert.deepEqual((await store.list()).map((j) => j.studyInstanceUID).sort(), ["1.4.2", "1.4.3"]);
});
