import type { ErrorCode, Stage } from "../errors.js";
import type { OutboxEntry, ResultFacts } from "../notify/outbox.js";
import type { SourceKind } from "../pacs/source.js";
import type { RuleDecision } from "../route/routeStudy.js";
import type { OutputKind } from "../route/rules.js";

/**
 * queued → running → done; or failed (bad input: retrying cannot help), dead (a transient error outlasted every
 * attempt: the dead letter), skipped (nothing for any rule in the study), cancelled (through the API).
 * failed, dead, skipped and cancelled jobs can be retried through the API.
 */
export type JobState = "queued" | "running" | "done" | "failed" | "dead" | "skipped" | "cancelled";
export const JOB_STATES: readonly JobState[] = ["queued", "running", "done", "failed", "dead", "skipped", "cancelled"];
export const FINAL_STATES: readonly JobState[] = ["done", "failed", "dead", "skipped", "cancelled"];

/**
 * A route job: one per announced study; it applies the routing rules and makes the segment jobs. Announcing the
 * study again routes it again (series that arrived later get their jobs; the others are not repeated).
 * A segment job: one per (study, series, model, model version, destination), the idempotency key; it runs one model
 * on one series and stores the results in one destination (two rules sending the same model's result on the same
 * series to the same destination make one job, which the first rule names).
 */
export type JobKind = "route" | "segment";
export const JOB_KINDS: readonly JobKind[] = ["route", "segment"];

/** Seconds spent in each stage of the path, as recorded on a finished job. */
export type StageTimings = Partial<Record<"route" | "fetch" | "volume" | "inference" | "encode" | "store", number>>;

/** What every job has, whatever its kind. */
export interface JobBase {
  id: string;
  studyInstanceUID: string;
  /** where the study's images are read from */
  source: SourceKind;
  state: JobState;
  attempts: number;
  /** epoch ms before which a retried job is not picked up */
  notBefore: number;
  /** a cancel asked for while the job was running; it stops at the next stage boundary */
  cancelRequested: boolean;
  /** why the job failed, was skipped, or is waiting to be retried */
  error?: { code: ErrorCode; stage: Stage; message: string };
  timings?: StageTimings;
  /** epoch ms the job was made (for a route job: when the study was announced) */
  createdAt: number;
  updatedAt: number;
  /** while running: epoch ms until which its worker holds it; past that, another worker may take it over */
  leaseUntil?: number;
  /** which worker (host name:pid) ran each attempt, oldest first */
  attemptLog?: AttemptRecord[];
}

export interface AttemptRecord {
  attempt: number;
  workerId: string;
  /** epoch ms the attempt was claimed */
  startedAt: number;
}

/** A route job: one per announced study. */
export interface RouteJob extends JobBase {
  kind: "route";
  /** what each rule made of the study, once routed */
  routing?: RuleDecision[];
}

/** A segment job: one series, one model, one destination. */
export interface SegmentJob extends JobBase {
  kind: "segment";
  /** the series, the model, where the results go; each output's UIDs fixed at creation, so a retried store is recognised */
  segment: SegmentTarget & {
    uids: Partial<Record<OutputKind, OutputUids>>;
    executionProvider?: string;
    /**
     * The output UIDs of earlier results of this job, oldest first, superseded by `uids`: the job was run again
     * because instances of its series were replaced (STOW-RS with `stow.duplicates: "overwrite"`).
     */
    superseded?: Partial<Record<OutputKind, OutputUids>>[];
  };
  /** what was done to the input that a reader of the result should know (e.g. which acquisition was used) */
  warnings?: string[];
}

export type Job = RouteJob | SegmentJob;

export interface OutputUids {
  seriesInstanceUID: string;
  sopInstanceUID: string;
}

/** What a segment job is for: the idempotency key (with the study) and where its results go. */
export interface SegmentTarget {
  seriesInstanceUID: string;
  modelId: string;
  modelVersion: string;
  rule: string;
  destination: string;
  outputs: readonly OutputKind[];
}

/** What a successful run hands back to the store. */
export type JobResult =
  | {
      kind: "segment";
      executionProvider: string;
      timings: StageTimings;
      /** true when the result was already in the destination (a retry after a crash during storing) */
      alreadyStored: boolean;
      warnings: string[];
      /** what the notifiers say of the result (src/notify): the study's identifiers, the outputs, the organ volumes */
      facts?: ResultFacts;
      /** the outbox rows the store writes in the transaction that marks the job done (one per configured notifier) */
      notifications?: OutboxEntry[];
    }
  | { kind: "route"; timings: StageTimings; decisions: RuleDecision[]; jobs: SegmentTarget[] };
