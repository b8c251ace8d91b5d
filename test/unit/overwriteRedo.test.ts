import assert from "node:assert/strict";
import { after, afterEach, it } from "node:test";
import type { Express } from "express";
import request from "supertest";
import { parsePart10 } from "../../src/dicom/dataset.js";
import { DelineateError } from "../../src/errors.js";
import type { Job, JobResult, SegmentJob, SegmentTarget } from "../../src/jobs/job.js";
import type { JobStore } from "../../src/jobs/jobStore.js";
import { buildMultipart } from "../../src/pacs/multipart.js";
import { pushedFixture, replaceAscii } from "../helpers/pushed.js";
import { stopTestPostgres } from "../helpers/store.js";
import { stowApp } from "../helpers/stowApp.js";

// the store is the one DELINEATE_TEST_STORE names (npm run test:postgres runs this on PostgreSQL)
const apps: Awaited<ReturnType<typeof stowApp>>[] = [];
const openApp = async (options: Parameters<typeof stowApp>[0]) => {
  const a = await stowApp(options);
  apps.push(a);
  return a;
};
afterEach(async () => {
  for (const a of apps.splice(0)) await a.dispose();
});
after(stopTestPostgres);

const claim = async (store: JobStore): Promise<Job> => {
  const job = await store.claimNext();
  assert.ok(job, "a job is due");
  return job;
};
const segmentOf = (job: Job | undefined): SegmentJob => {
  assert.equal(job?.kind, "segment");
  return job as SegmentJob;
};
const done: JobResult = {
  kind: "segment",
  executionProvider: "cpu",
  timings: {},
  alreadyStored: false,
  warnings: [],
};

/** Routes the study as a route job would (one segment job for `series`); returns how many segment jobs were new or redone. */
async function route(store: JobStore, series: string): Promise<number> {
  const job = await claim(store);
  assert.equal(job.kind, "route");
  const target: SegmentTarget = {
    seriesInstanceUID: series,
    modelId: "m",
    modelVersion: "1.0.0",
    rule: "r",
    destination: "pacs",
    outputs: ["seg"],
  };
  return store.complete(job, { kind: "route", timings: {}, decisions: [], jobs: [target] });
}

it("redoes a done series when the overwrite policy replaces one of its instances: a new result, the old one superseded", async () => {
  const { files } = pushedFixture(1);
  const a = files[0]!;
  const { StudyInstanceUID: study, SeriesInstanceUID: series } = parsePart10(a).dataset as Record<string, string>;
  const b = replaceAscii(a, "Push^Pia", "Push^Pim"); // a's UIDs, other content
  b[b.length - 1] = (b[b.length - 1]! + 1) & 0xff;
  const { app, store } = await openApp({ duplicates: "overwrite", noteInStore: true });
  const send = (part: Uint8Array) =>
    request(app as Express)
      .post("/dicom-web/studies")
      .set("Authorization", "Bearer t0ken")
      .set("Content-Type", 'multipart/related; type="application/dicom"; boundary=b0undary')
      .send(Buffer.from(buildMultipart([part], "b0undary")));

  assert.equal((await send(a)).status, 200);
  assert.deepEqual(await store.queueQuietPushed(Date.now() + 1, 0), [study]);
  assert.equal(await route(store, series!), 1);
  const first = segmentOf(await claim(store));
  await store.complete(first, done);
  const oldUids = first.segment.uids;

  assert.equal((await send(b)).status, 200, "overwrite: replaced");
  assert.deepEqual(await store.queueQuietPushed(Date.now() + 1, 0), [study], "the study is routed again");
  // it was 0: the segment job stayed done, no new result, the old SEG stood for the changed series
  assert.equal(await route(store, series!), 1, "the changed series is redone");
  const redone = segmentOf(await store.get(first.id));
  assert.equal(redone.state, "queued");
  assert.equal(redone.attempts, 0);
  assert.notDeepEqual(redone.segment.uids, oldUids, "new output UIDs: a new result, not the old one recognised");
  assert.deepEqual(redone.segment.superseded, [oldUids], "the old result is recorded as superseded");
  await store.complete(await claim(store), done);

  assert.equal((await send(a)).status, 200, "replaced back");
  assert.equal((await send(a)).status, 200, "the same content again");
  await store.queueQuietPushed(Date.now() + 1, 0);
  assert.equal(await route(store, series!), 1);
  const twice = segmentOf(await store.get(first.id));
  assert.equal(twice.segment.superseded?.length, 2, "each result it replaced is kept, oldest first");
  assert.deepEqual(twice.segment.superseded?.[0], oldUids);
  await store.complete(await claim(store), done);

  // announced again with nothing replaced (e.g. our own result arriving): nothing is redone
  await store.enqueue([study!], undefined, "pushed");
  assert.equal(await route(store, series!), 0);
  assert.equal((await store.get(first.id))?.state, "done");
});

it("queues a failed job of a replaced series again with its UIDs, and leaves a series replaced during routing for the next route", async () => {
  const { store } = await openApp({ duplicates: "overwrite", noteInStore: true });
  await store.notePushed("1.2.3", Date.now());
  await store.queueQuietPushed(Date.now() + 1, 0);
  assert.equal(await route(store, "1.2.3.4"), 1);
  const seg = segmentOf(await claim(store));
  await store.finishWithError(seg, "failed", new DelineateError("DLN_ERR_DICOM_PARSE", "bad"));

  await store.notePushed("1.2.3", Date.now(), ["1.2.3.4"]);
  await store.queueQuietPushed(Date.now() + 1, 0);
  assert.equal(await route(store, "1.2.3.4"), 1, "failed on the old content: tried again on the new");
  const again = segmentOf(await store.get(seg.id));
  assert.deepEqual(
    [again.state, again.segment.uids, again.segment.superseded],
    ["queued", seg.segment.uids, undefined],
  );
  await store.complete(await claim(store), done);

  // replaced after the route job was claimed: kept for the route that follows
  await store.notePushed("1.2.3", Date.now());
  await store.queueQuietPushed(Date.now() + 1, 0);
  const routeJob = await claim(store);
  await new Promise((r) => setTimeout(r, 5));
  await store.notePushed("1.2.3", Date.now(), ["1.2.3.4"]);
  const target: SegmentTarget = {
    seriesInstanceUID: "1.2.3.4",
    modelId: "m",
    modelVersion: "1.0.0",
    rule: "r",
    destination: "pacs",
    outputs: ["seg"],
  };
  assert.equal(await store.complete(routeJob, { kind: "route", timings: {}, decisions: [], jobs: [target] }), 0);
  await store.queueQuietPushed(Date.now() + 1, 0);
  assert.equal(await route(store, "1.2.3.4"), 1, "the next route redoes it");
});
