import type { ErrorCode, Stage } from "../errors.js";
import type { SourceKind } from "../pacs/source.js";

/**
 * queued → running → done; or failed (bad input: retrying cannot help), dead (a transient error outlasted every
 * attempt: the dead letter), skipped (nothing for the model in the study), cancelled (through the API).
 * failed, dead, skipped and cancelled jobs can be retried through the API.
 */
export type JobState = "queued" | "running" | "done" | "failed" | "dead" | "skipped" | "cancelled";
export const JOB_STATES: readonly JobState[] = ["queued", "running", "done", "failed", "dead", "skipped", "cancelled"];
export const FINAL_STATES: readonly JobState[] = ["done", "failed", "dead", "skipped", "cancelled"];

/** Seconds spent in each stage of the path, as recorded on a finished job. */
export type StageTimings = Partial<Record<"route" | "fetch" | "volume" | "inference" | "encode" | "store", number>>;

/** One job: one study through one model version. Its output UIDs are fixed when it is created, so a retried store can be recognised. */
export interface Job {
  id: string;
  studyInstanceUID: string;
  /** where the study's images are read from; results always go to the PACS */
  source: SourceKind;
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
  /** a cancel asked for while the job was running; it stops at the next stage boundary */
  cancelRequested: boolean;
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
