import type { ErrorCode, Stage } from "../errors.js";

export type JobState = "queued" | "running" | "done" | "failed" | "skipped";

/** Seconds spent in each stage of the path, as recorded on a finished job. */
export type StageTimings = Partial<Record<"route" | "fetch" | "volume" | "inference" | "encode" | "store", number>>;

/** One job: one study through one model version. Its output UIDs are fixed when it is created, so a retried store can be recognised. */
export interface Job {
  id: string;
  studyInstanceUID: string;
  modelId: string;
  modelVersion: string;
  state: JobState;
  attempts: number;
  /** epoch ms before which a retried job is not picked up */
  notBefore: number;
  output: { seriesInstanceUID: string; sopInstanceUID: string };
  seriesInstanceUID?: string;
  executionProvider?: string;
  /** why the job failed, was skipped, or is waiting to be retried */
  error?: { code: ErrorCode; stage: Stage; message: string };
  timings?: StageTimings;
  /** epoch ms the study was announced (for arrival-to-result latency) */
  createdAt: number;
  updatedAt: number;
}

/** What a successful run hands back to the store. */
export interface JobResult {
  seriesInstanceUID: string;
  executionProvider: string;
  timings: StageTimings;
  /** true when the result was already in the PACS (a retry after a crash during storing) */
  alreadyStored: boolean;
}
