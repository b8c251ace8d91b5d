import assert from "node:assert/strict";
import type { SegmentJob } from "../../src/jobs/job.js";
import type { JobStore } from "../../src/jobs/jobStore.js";
import { outboxEntries } from "../../src/notify/facts.js";
import type { NotifierName, ResultFacts } from "../../src/notify/outbox.js";

/** The facts of a made-up result (a test patient, two organs). */
export function testFacts(job: SegmentJob): ResultFacts {
  return {
    jobId: job.id,
    studyInstanceUID: job.studyInstanceUID,
    seriesInstanceUID: job.segment.seriesInstanceUID,
    accessionNumber: "ACC-0042",
    patientId: "NOTIFY-17",
    patientName: "Test^Patient^Middle",
    patientBirthDate: "19700101",
    patientSex: "O",
    studyDate: "20260101",
    modality: "CT",
    modelId: job.segment.modelId,
    modelVersion: job.segment.modelVersion,
    outputs: job.segment.uids,
    organs: [
      { label: 1, name: "liver", code: { code: "10200004", scheme: "SCT", meaning: "Liver" }, volumeMl: 1523.25 },
      { label: 2, name: "spleen", code: { code: "78961009", scheme: "SCT", meaning: "Spleen" }, volumeMl: 187.5 },
    ],
    disclaimer: "NOT FOR CLINICAL USE",
    completedAt: Date.now(),
  };
}

/** Makes a study's segment job, claims it and completes it with notifications for `notifiers`; returns the job. */
export async function completedSegmentJob(
  store: JobStore,
  study: string,
  notifiers: readonly NotifierName[],
): Promise<SegmentJob> {
  await store.enqueue([study]);
  const routeJob = await store.claimNext();
  assert.equal(routeJob?.kind, "route");
  await store.complete(routeJob!, {
    kind: "route",
    timings: {},
    decisions: [],
    jobs: [
      {
        seriesInstanceUID: `${study}.1`,
        modelId: "m",
        modelVersion: "1.0.0",
        rule: "r",
        destination: "pacs",
        outputs: ["seg", "sr"],
      },
    ],
  });
  const job = await store.claimNext();
  assert.equal(job?.kind, "segment");
  const seg = job as SegmentJob;
  const facts = testFacts(seg);
  await store.complete(seg, {
    kind: "segment",
    executionProvider: "cpu",
    timings: {},
    alreadyStored: false,
    warnings: [],
    facts,
    notifications: outboxEntries(facts, notifiers),
  });
  return seg;
}
