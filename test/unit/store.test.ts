import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { after, afterEach, describe, it } from "node:test";
import Database from "better-sqlite3";
import { DelineateError } from "../../src/errors.js";
import type { Job, SegmentJob, SegmentTarget } from "../../src/jobs/job.js";
import type { JobStore } from "../../src/jobs/jobStore.js";
import { SqliteJobStore } from "../../src/jobs/sqliteStore.js";
import { newUid } from "../../src/outputs/uid.js";
import { stopTestPostgres, TEST_STORE, type TestStore, testStore } from "../helpers/store.js";
import { tempDir } from "../helpers/tools.js";

const target = (series: string, model = "m", version = "1.0.0", destination = "pacs"): SegmentTarget => ({
  seriesInstanceUID: series,
  modelId: model,
  modelVersion: version,
  rule: "r",
  destination,
  outputs: ["seg"],
});
/** every store a test opened (of the kind DELINEATE_TEST_STORE names), disposed of after it */
const opened: TestStore[] = [];
const open = async () => {
  const t = await testStore();
  opened.push(t);
  return t;
};
const folders: string[] = [];
const fresh = () => {
  const dir = tempDir("store-");
  folders.push(dir);
  return dir;
};
after(stopTestPostgres);
afterEach(async () => {
  for (const t of opened.splice(0)) await t.dispose();
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});
/** Takes the next job, which must be there. */
const claim = async (store: JobStore, now?: number): Promise<Job> => {
  const job = await store.claimNext(now);
  assert.ok(job, "a job to claim");
  return job;
};
const segmentOf = (job: Job | undefined): SegmentJob => {
  assert.equal(job?.kind, "segment");
  return job as SegmentJob;
};

/** Study 1.1 routed to one series, whose segment job completes with one warning. */
async function routeThenSegmentWithWarning(store: JobStore): Promise<{ routeJob: Job; segment: Job }> {
  await store.enqueue(["1.1"]);
  const routeJob = await claim(store);
  assert.equal(
    await store.complete(routeJob, { kind: "route", timings: {}, decisions: [], jobs: [target("1.1.1")] }),
    1,
  );
  const segment = await claim(store);
  await store.complete(segment, {
    kind: "segment",
    executionProvider: "cpu",
    timings: {},
    alreadyStored: false,
    warnings: ["used acquisition 2"],
  });
  return { routeJob, segment };
}
/** Routes the oldest queued route job to the given segment targets, as a route job would. */
const route = async (store: JobStore, jobs: SegmentTarget[]) => {
  const job = await claim(store);
  assert.equal(job.kind, "route");
  return store.complete(job, { kind: "route", timings: {}, decisions: [], jobs });
};

describe("job store", () => {
  it("pages jobs newest first by (created time, id); a job made later does not shift the pages after the first", async () => {
    const { store } = await open();
    await store.enqueue(["1.1"]);
    await new Promise((r) => setTimeout(r, 5));
    await store.enqueue(["1.2", "1.3"]); // one transaction: the same created time, told apart by id
    const pages: string[][] = [];
    let after: { createdAt: number; id: string } | undefined;
    for (let i = 0; i < 4; i++) {
      const page = await store.listPage({ kind: "route" }, 1, after);
      pages.push(page.map((j) => j.studyInstanceUID));
      const last = page.at(-1);
      if (last) after = { createdAt: last.createdAt, id: last.id };
      if (i === 0) await store.enqueue(["1.4"]); // newer than every page still to come
    }
    assert.deepEqual(pages.slice(0, 2).flat().sort(), ["1.2", "1.3"]);
    assert.deepEqual(pages.slice(2), [["1.1"], []]);
    assert.deepEqual((await store.listPage({}, 10)).map((j) => j.studyInstanceUID)[0], "1.4", "newest first");
    assert.deepEqual(await store.listPage({ kind: "segment" }, 10), []);
  });
  it("makes one route job per study, advancing the cursor with the jobs", async () => {
    const { store } = await open();
    assert.equal(await store.enqueue(["1.1", "1.2"], { name: "feed", value: 7 }), 2);
    assert.equal(await store.enqueue(["1.1"], { name: "feed", value: 9 }), 0, "announced again while queued");
    assert.equal(await store.cursor("feed"), 9);
    assert.deepEqual(
      (await store.list()).map((j) => [j.kind, j.studyInstanceUID, j.state]),
      [
        ["route", "1.2", "queued"],
        ["route", "1.1", "queued"],
      ],
    );
  });
  it("makes one segment job per (study, series, model, version, destination), however often the study is routed", async () => {
    const { store } = await open();
    await store.enqueue(["1.1"]);
    assert.equal(await route(store, [target("1.1.1"), target("1.1.1", "other"), target("1.1.2")]), 3);
    assert.equal(await store.enqueue(["1.1"]), 1, "announced again once routed: routed again");
    assert.equal(
      await route(store, [
        target("1.1.1"),
        target("1.1.1", "other"),
        target("1.1.2"),
        target("1.1.2", "m", "2.0.0"),
        target("1.1.2", "m", "1.0.0", "research"),
      ]),
      2,
      "only the new model version and the new destination are new",
    );
    const segments = (await store.list({ kind: "segment" })).map(segmentOf);
    assert.equal(segments.length, 5);
    assert.equal(
      new Set(segments.map((j) => j.segment.uids.seg?.sopInstanceUID)).size,
      5,
      "each segment job has its own output UIDs",
    );
    assert.deepEqual(
      (await store.list({ kind: "route" })).map((j) => j.state),
      ["done"],
    );
  });
  it("survives a restart: a running job is queued again with its output UIDs unchanged", async () => {
    const t = await testStore(undefined, { leaseMs: 200 });
    opened.push(t);
    await t.store.enqueue(["1.1"]);
    await route(t.store, [target("1.1.1")]);
    const claimed = segmentOf(await claim(t.store));
    assert.deepEqual([claimed.state, claimed.attempts], ["running", 1]);
    await t.store.close(); // a crash: the job was never finished
    const b = await t.reopen();
    // the embedded store puts it back at start-up; a shared one once its lease has expired
    assert.equal(await b.recoverInterrupted(), TEST_STORE === "sqlite" ? 1 : 0);
    await new Promise((r) => setTimeout(r, 250));
    const again = segmentOf(await claim(b));
    assert.equal(again.id, claimed.id);
    assert.equal(again.attempts, 2);
    assert.deepEqual(again.segment, claimed.segment);
  });
  it("holds a job back until its retry time and records why", async () => {
    const { store } = await open();
    await store.enqueue(["1.1"]);
    const job = await claim(store);
    const err = new DelineateError("DLN_ERR_PACS_UNAVAILABLE", "PACS down");
    await store.finishWithError(job, "queued", err, Date.now() + 60_000);
    assert.equal(await store.claimNext(), undefined);
    assert.equal((await store.claimNext(Date.now() + 61_000))?.id, job.id);
    assert.deepEqual((await store.get(job.id))?.error, {
      code: "DLN_ERR_PACS_UNAVAILABLE",
      stage: "pacs",
      message: "PACS down",
    });
  });
  it("keeps a segment job's warnings", async () => {
    const { store } = await open();
    const { segment } = await routeThenSegmentWithWarning(store);
    const done = segmentOf(await store.get(segment.id));
    assert.deepEqual([done.warnings, done.segment.executionProvider], [["used acquisition 2"], "cpu"]);
  });
});

describe(`leases and fencing (${TEST_STORE})`, () => {
  it("lets another worker take a job over once its lease expires, and fences the late worker out", async () => {
    const t = await testStore(undefined, { workerId: "a:1", leaseMs: 300 });
    opened.push(t);
    const b = await t.reopen({ workerId: "b:2", leaseMs: 60_000 });
    await t.store.enqueue(["1.1"]);
    const first = await claim(t.store);
    assert.equal(await b.claimNext(), undefined, "held: nobody else gets it");
    assert.equal(await t.store.heartbeat(first), true, "a heartbeat renews it");
    assert.equal(await b.claimNext(), undefined, "still held after the heartbeat");
    await new Promise((r) => setTimeout(r, 400));
    const second = await claim(b);
    assert.deepEqual([second.id, second.attempts], [first.id, 2]);
    assert.deepEqual(
      second.attemptLog?.map((a) => [a.attempt, a.workerId]),
      [
        [1, "a:1"],
        [2, "b:2"],
      ],
    );
    // the first worker wakes up: every write it tries is refused, and nothing changes
    const lost = { code: "DLN_ERR_LEASE_LOST" };
    assert.equal(await t.store.heartbeat(first), false);
    await assert.rejects(t.store.cancelRequested(first), lost);
    await assert.rejects(
      t.store.complete(first, { kind: "route", timings: {}, decisions: [], jobs: [target("1.1.1")] }),
      lost,
    );
    await assert.rejects(
      t.store.finishWithError(first, "failed", new DelineateError("DLN_ERR_INFERENCE", "late")),
      lost,
    );
    const now = await b.get(first.id);
    assert.deepEqual([now?.state, now?.attempts, (await b.list({ kind: "segment" })).length], ["running", 2, 0]);
    assert.equal(await b.complete(second, { kind: "route", timings: {}, decisions: [], jobs: [target("1.1.1")] }), 1);
    assert.equal((await b.get(first.id))?.state, "done");
  });
  it("shows the cluster: nodes and their last beat, queue depth per model, expired leases and takeovers", async () => {
    const t = await testStore(undefined, { workerId: "a:1", leaseMs: 100 });
    opened.push(t);
    const b = await t.reopen({ workerId: "b:2" });
    await t.store.beat({ workerId: "a:1", roles: ["worker"], models: ["m"] }, 1000);
    await b.beat({ workerId: "b:2", roles: ["ingest", "api"], models: [] }, 2000);
    await b.beat({ workerId: "b:2", roles: ["ingest", "api"], models: [] }, 3000);
    await t.store.enqueue(["1.1", "1.2"]);
    await route(t.store, [target("1.1.1"), target("1.1.2", "other"), target("1.1.3", "other")]);
    const claimed = await claim(t.store); // the second route job, whose worker then goes quiet
    await new Promise((r) => setTimeout(r, 150));
    const c = await b.cluster();
    assert.deepEqual(
      c.nodes.map((n) => [n.workerId, n.roles, n.models, n.lastSeen]),
      [
        ["a:1", ["worker"], ["m"], 1000],
        ["b:2", ["ingest", "api"], [], 3000],
      ],
    );
    assert.deepEqual([c.queued, c.leasesExpired, c.takenOver], [{ m: 1, other: 2 }, 1, 0]);
    assert.equal((await claim(b)).id, claimed.id, "the expired one is taken over first (oldest)");
    assert.equal((await b.cluster()).takenOver, 1);
  });
  it("hands a worker only the models it serves (placement), and route jobs to any", async () => {
    const t = await open();
    const gpu = await t.reopen({ workerId: "gpu:1", models: ["big"] });
    await t.store.enqueue(["1.1"]);
    assert.equal((await claim(gpu)).kind, "route", "any worker routes");
    const routeJob = (await t.store.list({ kind: "route" }))[0];
    assert.ok(routeJob);
    await gpu.complete(routeJob, {
      kind: "route",
      timings: {},
      decisions: [],
      jobs: [target("1.1.1", "small"), target("1.1.1", "big")],
    });
    assert.equal(segmentOf(await claim(gpu)).segment.modelId, "big");
    assert.equal(await gpu.claimNext(), undefined, "the small model's job is not for it");
    assert.equal(segmentOf(await claim(t.store)).segment.modelId, "small");
  });
  it("hands a due job to exactly one of many concurrent claimers", async () => {
    const t = await open();
    const studies = Array.from({ length: 20 }, (_, i) => `1.${i + 1}`);
    await t.store.enqueue(studies);
    const handles = [t.store, ...(await Promise.all([1, 2, 3].map((i) => t.reopen({ workerId: `w:${i}` }))))];
    const claimed: string[] = [];
    await Promise.all(
      handles.map(async (h) => {
        for (let job = await h.claimNext(); job; job = await h.claimNext()) claimed.push(job.id);
      }),
    );
    assert.equal(claimed.length, 20);
    assert.equal(new Set(claimed).size, 20, "no job claimed twice");
  });
});

describe("SQLite schema migrations", () => {
  it("brings a job store of the first schema up to date, keeping output UIDs and queued studies", async () => {
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
    const store = new SqliteJobStore(path.join(dir, "delineate.sqlite"), () => newUid("2.25"));
    const a = segmentOf(await store.get("a"));
    const b = await store.get("b");
    assert.deepEqual(
      [a.state, a.segment.seriesInstanceUID, a.segment.uids, a.segment.executionProvider],
      ["done", "1.1.1", { seg: { seriesInstanceUID: "2.25.1", sopInstanceUID: "2.25.2" } }, "cpu"],
    );
    assert.deepEqual([b?.kind, b?.state, b?.source], ["route", "queued", "pushed"]);
    await store.close();
    const again = new SqliteJobStore(path.join(dir, "delineate.sqlite"), () => newUid("2.25"));
    assert.equal((await again.list()).length, 2, "opening it again changes nothing");
    await again.close();
  });
  const V7 = "ALTER TABLE jobs DROP COLUMN superseded_uids; DROP TABLE pushed_replaced;";
  for (const [version, lacking, drop] of [
    [
      2,
      "warnings, lease, attempt or superseded_uids columns",
      `${V7} ALTER TABLE jobs DROP COLUMN warnings; ALTER TABLE jobs DROP COLUMN lease_until; ALTER TABLE jobs DROP COLUMN attempt_log; ALTER TABLE jobs DROP COLUMN takeovers; DROP TABLE nodes;`,
    ],
    [6, "superseded_uids column or pushed_replaced table", V7],
  ] as const)
    it(`brings a schema ${version} store (no ${lacking}) up to date, and keeps a segment job's warnings`, async () => {
      const dir = fresh();
      const file = path.join(dir, "delineate.sqlite");
      await new SqliteJobStore(file, () => newUid("2.25")).close();
      const old = new Database(file);
      old.exec(`${drop} PRAGMA user_version = ${version};`);
      old.close();
      const store = new SqliteJobStore(file, () => newUid("2.25"));
      const { routeJob, segment } = await routeThenSegmentWithWarning(store);
      assert.deepEqual(segmentOf(await store.get(segment.id)).warnings, ["used acquisition 2"]);
      assert.equal((await store.get(routeJob.id))?.kind, "route");
      // the step-7 additions work on the upgraded store: a replaced series redoes its done job
      const firstUids = segmentOf(await store.get(segment.id)).segment.uids;
      await store.notePushed("1.1", Date.now(), ["1.1.1"]);
      await store.enqueue(["1.1"]);
      assert.equal(
        await store.complete(await claim(store), {
          kind: "route",
          timings: {},
          decisions: [],
          jobs: [target("1.1.1")],
        }),
        1,
      );
      const redone = segmentOf(await store.get(segment.id));
      assert.equal(redone.state, "queued");
      assert.deepEqual(redone.segment.superseded, [firstUids]);
      assert.notDeepEqual(redone.segment.uids, firstUids);
      await store.close();
    });
});

describe("job control", () => {
  it("cancels a queued job at once and a running one at its next stage; retries what has ended", async () => {
    const { store } = await open();
    await store.enqueue(["1.1", "1.2"]);
    const [second, first] = await store.list();
    assert.ok(first && second);
    assert.equal(await store.cancel(first.id), "cancelled");
    assert.equal((await store.get(first.id))?.state, "cancelled");
    assert.equal((await store.get(first.id))?.error?.code, "DLN_ERR_CANCELLED");
    const running = await claim(store);
    assert.equal(running.id, second.id, "a cancelled job is never claimed");
    assert.equal(await store.cancel(running.id), "requested");
    assert.ok(await store.cancelRequested(running));
    assert.equal(await store.retry(running.id), false, "a running job cannot be retried");
    assert.equal(await store.retry(first.id), true);
    const again = await store.get(first.id);
    assert.deepEqual([again?.state, again?.attempts, again?.error], ["queued", 0, undefined]);
    assert.equal(await store.retry("no-such-job"), undefined);
    assert.equal(await store.cancel("no-such-job"), undefined);
  });
  it("ends a job whose cancel was asked for before a crash as cancelled, not running again", async () => {
    const t = await testStore(undefined, { leaseMs: 200 });
    opened.push(t);
    await t.store.enqueue(["1.1"]);
    const job = await claim(t.store);
    await t.store.cancel(job.id);
    await t.store.close();
    const b = await t.reopen();
    assert.equal(await b.recoverInterrupted(), 0);
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(await b.claimNext(), undefined);
    assert.equal((await b.get(job.id))?.state, "cancelled");
  });
});

describe("QIDO polling state", () => {
  it("announces a study once its instance count has been quiet long enough, and again only after it changed", async () => {
    const { store } = await open();
    const quiet = 10_000;
    assert.equal(await store.observeStudy("1.1", 5, 0, quiet), false, "first sight");
    assert.equal(await store.observeStudy("1.1", 8, 4_000, quiet), false, "still arriving");
    assert.equal(await store.observeStudy("1.1", 8, 13_000, quiet), false, "quiet for 9 s only");
    assert.equal(await store.observeStudy("1.1", 8, 14_000, quiet), true, "quiet for 10 s");
    assert.equal(await store.observeStudy("1.1", 8, 20_000, quiet), false, "already announced");
    await route(store, [target("1.1.1")]);
    assert.equal(await store.observeStudy("1.1", 9, 30_000, quiet), false, "a series arrives (or our own SEG)");
    assert.equal(await store.observeStudy("1.1", 9, 40_000, quiet), true, "announced again once quiet: routed again");
    assert.equal(await store.observeStudy("1.1", 9, 99_000, quiet), false, "and not a third time");
    assert.deepEqual((await store.list()).map((j) => j.kind).sort(), ["route", "segment"]);
  });
});

describe("STOW-RS quiet period", () => {
  it("announces a pushed study once quiet, and again when more of it arrives", async () => {
    const { store } = await open();
    await store.notePushed("1.1", 0);
    assert.deepEqual(await store.queueQuietPushed(5_000, 10_000), []);
    assert.deepEqual(await store.queueQuietPushed(10_000, 10_000), ["1.1"]);
    assert.deepEqual(await store.queueQuietPushed(30_000, 10_000), [], "once");
    await route(store, [target("1.1.1")]);
    await store.notePushed("1.1", 40_000);
    assert.deepEqual(await store.queueQuietPushed(50_000, 10_000), ["1.1"]);
    const [r] = await store.list({ kind: "route" });
    assert.deepEqual([r?.state, r?.source], ["queued", "pushed"]);
  });
});

describe("PostgreSQL schema migrations", {
  skip: TEST_STORE !== "postgres" && "DELINEATE_TEST_STORE is not postgres",
}, () => {
  it("applies every version once, records it, and leaves a current schema alone", async () => {
    const { PostgresJobStore, PG_MIGRATIONS } = await import("../../src/jobs/postgresStore.js");
    const t = await open();
    const latest = PG_MIGRATIONS.at(-1)?.version;
    const again = await Promise.all([t.reopen(), t.reopen()]); // nodes starting together do not race
    for (const s of [t.store, ...again]) {
      assert.ok(s instanceof PostgresJobStore);
      assert.equal(await s.schemaVersion(), latest);
    }
    await t.store.enqueue(["1.1"]);
    assert.equal((await (await t.reopen()).list()).length, 1, "opening it again keeps the jobs");
  });
  it("brings a version-4 store (no superseded_uids, no pushed_replaced) to 5, keeping its done jobs redoable", async () => {
    const { default: pg } = await import("pg");
    const t = await open();
    await t.store.enqueue(["1.1"]);
    await route(t.store, [target("1.1.1")]);
    const seg = segmentOf(await claim(t.store));
    await t.store.complete(seg, {
      kind: "segment",
      executionProvider: "cpu",
      timings: {},
      alreadyStored: false,
      warnings: [],
    });
    const db = new pg.Client({ connectionString: t.url });
    await db.connect();
    await db.query(`ALTER TABLE jobs DROP COLUMN superseded_uids; DROP TABLE pushed_replaced; DROP INDEX jobs_page;
      DELETE FROM delineate_schema WHERE version = 5`);
    await db.end();
    const upgraded = await t.reopen();
    await upgraded.notePushed("1.1", Date.now(), ["1.1.1"]);
    await upgraded.enqueue(["1.1"]);
    assert.equal(await route(upgraded, [target("1.1.1")]), 1, "the replaced series is redone");
    const redone = segmentOf(await upgraded.get(seg.id));
    assert.deepEqual([redone.state, redone.segment.superseded], ["queued", [seg.segment.uids]]);
  });
});
