import assert from "node:assert/strict";
import { after, afterEach, describe, it } from "node:test";
import { DelineateError } from "../../src/errors.js";
import type { Job, JobResult } from "../../src/jobs/job.js";
import { JobWorker } from "../../src/jobs/worker.js";
import { createLogger } from "../../src/log.js";
import { stopTestPostgres, type TestStore, testStore } from "../helpers/store.js";

const log = createLogger({ level: "error", silent: true });
const result: JobResult = {
  kind: "segment",
  executionProvider: "cpu",
  timings: {},
  alreadyStored: false,
  warnings: [],
};
const opened: TestStore[] = [];
const store = async () => {
  const t = await testStore();
  opened.push(t);
  return t.store;
};
after(stopTestPostgres);
afterEach(async () => {
  for (const t of opened.splice(0)) await t.dispose();
});
const until = async (cond: () => Promise<boolean>) => {
  for (let i = 0; i < 2000 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(await cond(), "condition not reached");
};

describe("job worker", () => {
  it("runs at most `concurrency` jobs at once and finishes them all", async () => {
    const s = await store();
    await s.enqueue(["1.1", "1.2", "1.3", "1.4", "1.5"]);
    let running = 0,
      most = 0;
    const w = new JobWorker(
      s,
      async () => {
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 30));
        running--;
        return result;
      },
      { concurrency: 2, maxAttempts: 1, retryBaseSeconds: 1, idlePollMs: 10, heartbeatMs: 1000 },
      log,
    );
    w.start();
    await until(async () => (await s.counts()).done === 5);
    await w.stop();
    assert.equal(most, 2);
  });
  it("retries a transient error with backoff, then gives the job to the dead letter with its reason", async () => {
    const s = await store();
    await s.enqueue(["1.1"]);
    const attempts: number[] = [];
    const w = new JobWorker(
      s,
      async (job: Job) => {
        attempts.push(job.attempts);
        throw new DelineateError("DLN_ERR_PACS_UNAVAILABLE", "PACS answered 503");
      },
      { concurrency: 1, maxAttempts: 3, retryBaseSeconds: 0.01, idlePollMs: 5, heartbeatMs: 1000 },
      log,
    );
    w.start();
    await until(async () => (await s.counts()).dead === 1);
    await w.stop();
    assert.deepEqual(attempts, [1, 2, 3]);
    const [job] = await s.list();
    assert.deepEqual(job?.error, { code: "DLN_ERR_PACS_UNAVAILABLE", stage: "pacs", message: "PACS answered 503" });
  });
  it("fails bad input at once, skips a study without a series, ends a cancelled job cancelled", async () => {
    const s = await store();
    await s.enqueue(["1.1", "1.2", "1.3"]);
    const errors: Record<string, DelineateError> = {
      "1.1": new DelineateError("DLN_ERR_VOLUME_TILT", "tilted"),
      "1.2": new DelineateError("DLN_ERR_NO_SERIES", "no CT"),
      "1.3": new DelineateError("DLN_ERR_CANCELLED", "cancelled"),
    };
    const w = new JobWorker(
      s,
      async (job: Job) => {
        throw errors[job.studyInstanceUID]!;
      },
      { concurrency: 1, maxAttempts: 5, retryBaseSeconds: 1, idlePollMs: 5, heartbeatMs: 1000 },
      log,
    );
    w.start();
    await until(async () => {
      const c = await s.counts();
      return c.queued === 0 && c.running === 0;
    });
    await w.stop();
    const state = Object.fromEntries((await s.list()).map((j) => [j.studyInstanceUID, [j.state, j.attempts]]));
    assert.deepEqual(state, { "1.1": ["failed", 1], "1.2": ["skipped", 1], "1.3": ["cancelled", 1] });
  });
  it("leaves a job whose outcome the store could not record to be taken again, not failed", async () => {
    const t = await testStore(undefined, { leaseMs: 200 });
    opened.push(t);
    await t.store.enqueue(["1.1"]);
    let refusals = 0;
    // the store drops its connection once, just as the first attempt ends
    const flaky = new Proxy(t.store, {
      get(target, prop) {
        if (prop === "complete" && refusals === 0)
          return async () => {
            refusals++;
            throw new DelineateError("DLN_ERR_STORE_UNAVAILABLE", "connection terminated");
          };
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    let runs = 0;
    const w = new JobWorker(
      flaky,
      async () => {
        runs++;
        return result;
      },
      { concurrency: 1, maxAttempts: 1, retryBaseSeconds: 1, idlePollMs: 20, heartbeatMs: 1000 },
      log,
    );
    w.start();
    await until(async () => (await t.store.counts()).done === 1);
    await w.stop();
    const [job] = await t.store.list();
    assert.deepEqual([job?.state, job?.attempts, runs, refusals], ["done", 2, 2, 1]);
  });
});
