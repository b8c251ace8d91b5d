import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { DelineateError } from "../../src/errors.js";
import { JobStore } from "../../src/jobs/store.js";
import { newUid } from "../../src/outputs/uid.js";

const model = { id: "m", version: "1.0.0" };
const fresh = () => mkdtempSync(path.join(tmpdir(), "delineate-store-"));

describe("job store", () => {
  it("makes one job per (study, model, version), advancing the cursor with the jobs", () => {
    const store = new JobStore(fresh(), () => newUid("2.25"));
    assert.equal(store.enqueue(["1.1", "1.2"], model, { name: "feed", value: 7 }), 2);
    assert.equal(store.enqueue(["1.1"], model, { name: "feed", value: 9 }), 0, "announced again: no new job");
    assert.equal(store.enqueue(["1.1"], { id: "m", version: "2.0.0" }), 1, "a new model version is a new job");
    assert.equal(store.cursor("feed"), 9);
    const jobs = store.list();
    assert.equal(new Set(jobs.map((j) => j.output.sopInstanceUID)).size, 3, "each job has its own output UIDs");
  });
  it("survives a restart: a running job is queued again with its output UIDs unchanged", () => {
    const dir = fresh();
    const a = new JobStore(dir, () => newUid("2.25"));
    a.enqueue(["1.1"], model);
    const claimed = a.claimNext()!;
    assert.equal(claimed.state, "running");
    assert.equal(claimed.attempts, 1);
    a.close(); // a crash: the job was never finished
    const b = new JobStore(dir, () => newUid("2.25"));
    assert.equal(b.recoverInterrupted(), 1);
    const again = b.claimNext()!;
    assert.equal(again.id, claimed.id);
    assert.equal(again.attempts, 2);
    assert.deepEqual(again.output, claimed.output);
  });
  it("holds a job back until its retry time and records why", () => {
    const store = new JobStore(fresh(), () => newUid("2.25"));
    store.enqueue(["1.1"], model);
    const job = store.claimNext()!;
    store.finishWithError(job.id, "queued", new DelineateError("DLN_ERR_PACS_UNAVAILABLE", "PACS down"), Date.now() + 60_000);
    assert.equal(store.claimNext(), undefined);
    assert.equal(store.claimNext(Date.now() + 61_000)?.id, job.id);
    assert.deepEqual(store.get(job.id)?.error, { code: "DLN_ERR_PACS_UNAVAILABLE", stage: "pacs", message: "PACS down" });
  });
});

describe("job control", () => {
  it("cancels a queued job at once and a running one at its next stage; retries what has ended", () => {
    const store = new JobStore(fresh(), () => newUid("2.25"));
    store.enqueue(["1.1", "1.2"], model);
    const [second, first] = store.list();
    assert.equal(store.cancel(first!.id), "cancelled");
    assert.equal(store.get(first!.id)?.state, "cancelled");
    assert.equal(store.get(first!.id)?.error?.code, "DLN_ERR_CANCELLED");
    const running = store.claimNext()!;
    assert.equal(running.id, second!.id, "a cancelled job is never claimed");
    assert.equal(store.cancel(running.id), "requested");
    assert.ok(store.cancelRequested(running.id));
    assert.equal(store.retry(running.id), false, "a running job cannot be retried");
    assert.equal(store.retry(first!.id), true);
    const again = store.get(first!.id)!;
    assert.deepEqual([again.state, again.attempts, again.error, again.output], ["queued", 0, undefined, first!.output]);
    assert.equal(store.retry("no-such-job"), undefined);
    assert.equal(store.cancel("no-such-job"), undefined);
  });
  it("ends a job whose cancel was asked for before a crash as cancelled, not running again", () => {
    const dir = fresh();
    const a = new JobStore(dir, () => newUid("2.25"));
    a.enqueue(["1.1"], model);
    const job = a.claimNext()!;
    a.cancel(job.id);
    a.close();
    const b = new JobStore(dir, () => newUid("2.25"));
    assert.equal(b.recoverInterrupted(), 0);
    assert.equal(b.get(job.id)?.state, "cancelled");
  });
});

describe("QIDO polling state", () => {
  it("queues a study once its instance count has been quiet long enough, and never again", () => {
    const store = new JobStore(fresh(), () => newUid("2.25"));
    const quiet = 10_000;
    assert.equal(store.observeStudy("1.1", 5, 0, quiet, model), false, "first sight");
    assert.equal(store.observeStudy("1.1", 8, 4_000, quiet, model), false, "still arriving");
    assert.equal(store.observeStudy("1.1", 8, 13_000, quiet, model), false, "quiet for 9 s only");
    assert.equal(store.observeStudy("1.1", 8, 14_000, quiet, model), true, "quiet for 10 s");
    assert.equal(store.observeStudy("1.1", 8, 20_000, quiet, model), false, "already queued");
    assert.equal(store.observeStudy("1.1", 9, 30_000, quiet, model), false, "our own SEG arrives");
    assert.equal(store.observeStudy("1.1", 9, 99_000, quiet, model), false, "and the study is not queued again");
    assert.equal(store.list().length, 1);
  });
});
