import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { DelineateError } from "../../src/errors.js";
import type { SegmentTarget } from "../../src/jobs/job.js";
import { JobStore } from "../../src/jobs/store.js";
import { newUid } from "../../src/outputs/uid.js";

const fresh = () => mkdtempSync(path.join(tmpdir(), "delineate-store-"));
const target = (series: string, model = "m", version = "1.0.0", destination = "pacs"): SegmentTarget => ({
  seriesInstanceUID: series,
  modelId: model,
  modelVersion: version,
  rule: "r",
  destination,
  outputs: ["seg"],
});
/** Routes the oldest queued route job to the given segment targets, as a route job would. */
const route = (store: JobStore, jobs: SegmentTarget[]) => {
  const job = store.claimNext()!;
  assert.equal(job.kind, "route");
  return store.complete(job.id, { kind: "route", timings: {}, decisions: [], jobs });
};

describe("job store", () => {
  it("makes one route job per study, advancing the cursor with the jobs", () => {
    const store = new JobStore(fresh(), () => newUid("2.25"));
    assert.equal(store.enqueue(["1.1", "1.2"], { name: "feed", value: 7 }), 2);
    assert.equal(store.enqueue(["1.1"], { name: "feed", value: 9 }), 0, "announced again while queued: nothing new");
    assert.equal(store.cursor("feed"), 9);
    assert.deepEqual(
      store.list().map((j) => [j.kind, j.studyInstanceUID, j.state]),
      [
        ["route", "1.2", "queued"],
        ["route", "1.1", "queued"],
      ],
    );
  });
  it("makes one segment job per (study, series, model, version, destination), however often the study is routed", () => {
    const store = new JobStore(fresh(), () => newUid("2.25"));
    store.enqueue(["1.1"]);
    assert.equal(route(store, [target("1.1.1"), target("1.1.1", "other"), target("1.1.2")]), 3);
    assert.equal(store.enqueue(["1.1"]), 1, "announced again once routed: routed again");
    assert.equal(
      route(store, [
        target("1.1.1"),
        target("1.1.1", "other"),
        target("1.1.2"),
        target("1.1.2", "m", "2.0.0"),
        target("1.1.2", "m", "1.0.0", "research"),
      ]),
      2,
      "only the new model version and the new destination are new",
    );
    const segments = store.list({ kind: "segment" });
    assert.equal(segments.length, 5);
    assert.equal(
      new Set(segments.map((j) => j.segment!.uids.seg!.sopInstanceUID)).size,
      5,
      "each segment job has its own output UIDs",
    );
    assert.deepEqual(
      store.list({ kind: "route" }).map((j) => j.state),
      ["done"],
    );
  });
  it("survives a restart: a running job is queued again with its output UIDs unchanged", () => {
    const dir = fresh();
    const a = new JobStore(dir, () => newUid("2.25"));
    a.enqueue(["1.1"]);
    route(a, [target("1.1.1")]);
    const claimed = a.claimNext()!;
    assert.deepEqual([claimed.kind, claimed.state, claimed.attempts], ["segment", "running", 1]);
    a.close(); // a crash: the job was never finished
    const b = new JobStore(dir, () => newUid("2.25"));
    assert.equal(b.recoverInterrupted(), 1);
    const again = b.claimNext()!;
    assert.equal(again.id, claimed.id);
    assert.equal(again.attempts, 2);
    assert.deepEqual(again.segment, claimed.segment);
  });
  it("holds a job back until its retry time and records why", () => {
    const store = new JobStore(fresh(), () => newUid("2.25"));
    store.enqueue(["1.1"]);
    const job = store.claimNext()!;
    store.finishWithError(
      job.id,
      "queued",
      new DelineateError("DLN_ERR_PACS_UNAVAILABLE", "PACS down"),
      Date.now() + 60_000,
    );
    assert.equal(store.claimNext(), undefined);
    assert.equal(store.claimNext(Date.now() + 61_000)?.id, job.id);
    assert.deepEqual(store.get(job.id)?.error, {
      code: "DLN_ERR_PACS_UNAVAILABLE",
      stage: "pacs",
      message: "PACS down",
    });
  });
  it("brings a job store of the first schema up to date, keeping output UIDs and queued studies", () => {
    const dir = fresh();
    const v1 = new Database(path.join(dir, "delineate.sqlite"));
    v1.exec(`CREATE TABLE jobs (id TEXT PRIMARY KEY, study_uid TEXT NOT NULL, source TEXT NOT NULL DEFAULT 'pacs', model_id TEXT NOT NULL, model_version TEXT NOT NULL,
      state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, not_before INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,
      output_series_uid TEXT NOT NULL, output_sop_uid TEXT NOT NULL, series_uid TEXT, execution_provider TEXT, error_code TEXT, error_stage TEXT,
      error_message TEXT, timings TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, UNIQUE (study_uid, model_id, model_version));
      CREATE INDEX jobs_by_state ON jobs (state, not_before, created_at);
      INSERT INTO jobs VALUES ('a', '1.1', 'pacs', 'm', '1.0.0', 'done', 1, 0, 0, '2.25.1', '2.25.2', '1.1.1', 'cpu', NULL, NULL, NULL, '{}', 1, 2);
      INSERT INTO jobs VALUES ('b', '1.2', 'pushed', 'm', '1.0.0', 'queued', 0, 0, 0, '2.25.3', '2.25.4', NULL, NULL, NULL, NULL, NULL, NULL, 3, 3);`);
    v1.close();
    const store = new JobStore(dir, () => newUid("2.25"));
    const a = store.get("a")!,
      b = store.get("b")!;
    assert.deepEqual(
      [a.kind, a.state, a.segment?.seriesInstanceUID, a.segment?.uids, a.segment?.executionProvider],
      ["segment", "done", "1.1.1", { seg: { seriesInstanceUID: "2.25.1", sopInstanceUID: "2.25.2" } }, "cpu"],
    );
    assert.deepEqual([b.kind, b.state, b.source], ["route", "queued", "pushed"]);
    store.close();
    assert.equal(new JobStore(dir, () => newUid("2.25")).list().length, 2, "opening it again changes nothing");
  });
  it("brings a second-schema store (no warnings column) up to date, and keeps a segment job's warnings", () => {
    const dir = fresh();
    new JobStore(dir, () => newUid("2.25")).close();
    const v2 = new Database(path.join(dir, "delineate.sqlite"));
    v2.exec("ALTER TABLE jobs DROP COLUMN warnings; PRAGMA user_version = 2;");
    v2.close();
    const store = new JobStore(dir, () => newUid("2.25"));
    store.enqueue(["1.1"]);
    const route = store.claimNext()!;
    const target = {
      seriesInstanceUID: "1.1.1",
      modelId: "m",
      modelVersion: "1.0.0",
      rule: "default",
      destination: "pacs",
      outputs: ["seg" as const],
    };
    assert.equal(store.complete(route.id, { kind: "route", timings: {}, decisions: [], jobs: [target] }), 1);
    const segment = store.claimNext()!;
    store.complete(segment.id, {
      kind: "segment",
      executionProvider: "cpu",
      timings: {},
      alreadyStored: false,
      warnings: ["used acquisition 2"],
    });
    assert.deepEqual(store.get(segment.id)?.warnings, ["used acquisition 2"]);
    assert.equal(store.get(route.id)?.warnings, undefined);
    store.close();
  });
});

describe("job control", () => {
  it("cancels a queued job at once and a running one at its next stage; retries what has ended", () => {
    const store = new JobStore(fresh(), () => newUid("2.25"));
    store.enqueue(["1.1", "1.2"]);
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
    assert.deepEqual([again.state, again.attempts, again.error], ["queued", 0, undefined]);
    assert.equal(store.retry("no-such-job"), undefined);
    assert.equal(store.cancel("no-such-job"), undefined);
  });
  it("ends a job whose cancel was asked for before a crash as cancelled, not running again", () => {
    const dir = fresh();
    const a = new JobStore(dir, () => newUid("2.25"));
    a.enqueue(["1.1"]);
    const job = a.claimNext()!;
    a.cancel(job.id);
    a.close();
    const b = new JobStore(dir, () => newUid("2.25"));
    assert.equal(b.recoverInterrupted(), 0);
    assert.equal(b.get(job.id)?.state, "cancelled");
  });
});

describe("QIDO polling state", () => {
  it("announces a study once its instance count has been quiet long enough, and again only after it changed", () => {
    const store = new JobStore(fresh(), () => newUid("2.25"));
    const quiet = 10_000;
    assert.equal(store.observeStudy("1.1", 5, 0, quiet), false, "first sight");
    assert.equal(store.observeStudy("1.1", 8, 4_000, quiet), false, "still arriving");
    assert.equal(store.observeStudy("1.1", 8, 13_000, quiet), false, "quiet for 9 s only");
    assert.equal(store.observeStudy("1.1", 8, 14_000, quiet), true, "quiet for 10 s");
    assert.equal(store.observeStudy("1.1", 8, 20_000, quiet), false, "already announced");
    route(store, [target("1.1.1")]);
    assert.equal(store.observeStudy("1.1", 9, 30_000, quiet), false, "a series arrives (or our own SEG)");
    assert.equal(store.observeStudy("1.1", 9, 40_000, quiet), true, "announced again once quiet: it is routed again");
    assert.equal(store.observeStudy("1.1", 9, 99_000, quiet), false, "and not a third time");
    assert.deepEqual(
      store
        .list()
        .map((j) => j.kind)
        .sort(),
      ["route", "segment"],
    );
  });
});

describe("STOW-RS quiet period", () => {
  it("announces a pushed study once quiet, and again when more of it arrives", () => {
    const store = new JobStore(fresh(), () => newUid("2.25"));
    store.notePushed("1.1", 0);
    assert.deepEqual(store.queueQuietPushed(5_000, 10_000), []);
    assert.deepEqual(store.queueQuietPushed(10_000, 10_000), ["1.1"]);
    assert.deepEqual(store.queueQuietPushed(30_000, 10_000), [], "once");
    route(store, [target("1.1.1")]);
    store.notePushed("1.1", 40_000);
    assert.deepEqual(store.queueQuietPushed(50_000, 10_000), ["1.1"]);
    const [r] = store.list({ kind: "route" });
    assert.deepEqual([r?.state, r?.source], ["queued", "pushed"]);
  });
});
