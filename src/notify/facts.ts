import { type NaturalDataset, str } from "../dicom/dataset.js";
import type { SegmentJob } from "../jobs/job.js";
import type { NotifierName, OrganVolume, OutboxEntry, ResultFacts } from "./outbox.js";

/** The facts of a stored result, from the job, the source series' first instance and the measured organs. */
export function resultFacts(
  job: SegmentJob,
  source: NaturalDataset,
  organs: OrganVolume[],
  disclaimer: string,
): ResultFacts {
  return {
    jobId: job.id,
    studyInstanceUID: job.studyInstanceUID,
    seriesInstanceUID: job.segment.seriesInstanceUID,
    accessionNumber: str(source, "AccessionNumber"),
    patientId: str(source, "PatientID"),
    patientName: str(source, "PatientName"),
    patientBirthDate: str(source, "PatientBirthDate"),
    patientSex: str(source, "PatientSex"),
    studyDate: str(source, "StudyDate"),
    modality: str(source, "Modality"),
    modelId: job.segment.modelId,
    modelVersion: job.segment.modelVersion,
    outputs: job.segment.uids,
    organs,
    disclaimer,
    completedAt: Date.now(),
  };
}

/**
 * One outbox row per configured notifier. The result key is the outputs' SOP Instance UIDs, fixed when the job was
 * made: a job retried after a crash stores the same result and so notifies of it once.
 */
export function outboxEntries(facts: ResultFacts, notifiers: readonly NotifierName[]): OutboxEntry[] {
  const resultKey = Object.values(facts.outputs)
    .map((u) => u.sopInstanceUID)
    .sort()
    .join(",");
  return notifiers.map((notifier) => ({ notifier, resultKey, payload: facts }));
}
