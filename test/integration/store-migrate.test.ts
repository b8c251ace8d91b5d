import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { after, it } from "node:test";
import { defaultWorker } from "../../src/jobs/identity.js";
import type { SegmentTarget } from "../../src/jobs/job.js";
import { PostgresJobStore } from "../../src/jobs/postgresStore.js";
import { SqliteJobStore } from "../../src/jobs/sqliteStore.js";
import { newUid } from "../../src/outputs/uid.js";
import { stopTestPostgres, testPostgres } from "../helpers/store.js";
import { exec, ROOT, tempDir } from "../helpers/tools.js";

const dir = tempDir("migrate-");
after(async () => {
  await stopTestPostgres();
  rmSync(dir, { recursive: true, force: true });
});
const uid = () => newUid("2.25");
const target = (series: string): SegmentTarget => ({
  seriesInstanceUID: series,
  modelId: "ct-body",
  modelVersion: "1.0.0",
  rule: "default",
  destination: "pacs",
  outputs: ["seg", "sr"],
});
const migrate = async (from: string, to: string) => {
  const cli = path.join(ROOT, "dist/src/cli/main.js");
  const { stdout } = await exec(process.execPath, [cli, "store", "migrate", "--from", from, "--to", to]);
  return JSON.parse(stdout) as Record<string, number>;
};

it("moves a populated SQLite store into PostgreSQL, and the node continues from it without repeating a study", {
  timeout: 120_000,
}, async () => {
  const file = path.join(dir, "delineate.sqlite");
  const lite = new SqliteJobStore(file, uid);
  await lite.enqueue(["1.1", "1.2", "1.3"], { name: "orthanc-changes", value: 42 });
  const route = await lite.claimNext();
  assert.ok(route);
  await lite.complete(route, { kind: "route", timings: { route: 0.1 }, decisions: [], jobs: [target("1.1.1")] });
  const running = await lite.claimNext(); // the next route job: left running, as by a node stopped mid-job
  assert.ok(running);
  await lite.notePushed("1.9", 1000, ["1.9.1"]); // a series replaced by STOW-RS overwrite, not yet redone
  await lite.observeStudy("1.8", 12, 2000, 10_000);
  const before = await lite.list({}, 1000);
  await lite.close();

  const url = await (await testPostgres()).createDatabase();
  assert.deepEqual(await migrate(`sqlite:${file}`, url), {
    jobs: 4,
    cursors: 1,
    pushed_studies: 1,
    pushed_replaced: 1,
    polled_studies: 1,
  });
  assert.deepEqual(
    await migrate(`sqlite:${file}`, url),
    { jobs: 0, cursors: 0, pushed_studies: 0, pushed_replaced: 0, polled_studies: 0 },
    "running it again adds nothing",
  );

  const pgStore = await PostgresJobStore.open(url, uid, defaultWorker());
  try {
    const moved = await pgStore.list({}, 1000);
    const key = (j: (typeof moved)[number]) =>
      JSON.stringify([j.id, j.kind, j.studyInstanceUID, j.kind === "segment" ? j.segment : j.routing]);
    assert.deepEqual(moved.map(key).sort(), before.map(key).sort(), "every job, with its output UIDs");
    assert.equal(
      (await pgStore.get(running.id))?.state,
      "queued",
      "the job the stopped node was running is queued again",
    );
    assert.equal(await pgStore.cursor("orthanc-changes"), 42, "the change feed goes on from where it was");
    assert.deepEqual(await pgStore.queueQuietPushed(20_000, 10_000), ["1.9"], "STOW-RS state came along");

    // the study already segmented is announced again: routed again, but its series gets no second job
    assert.equal(await pgStore.enqueue(["1.1"]), 1);
    const again = await pgStore.list({ kind: "route", studyInstanceUID: "1.1" });
    assert.equal(again[0]?.state, "queued");
    for (let job = await pgStore.claimNext(); job; job = await pgStore.claimNext()) {
      if (job.kind !== "route") continue;
      const jobs = job.studyInstanceUID === "1.1" ? [target("1.1.1")] : [];
      await pgStore.complete(job, { kind: "route", timings: {}, decisions: [], jobs });
    }
    assert.equal((await pgStore.list({ kind: "segment", studyInstanceUID: "1.1" })).length, 1, "no study repeated");
  } finally {
    await pgStore.close();
  }
});
