import type { DelineateError, ErrorCode } from "../errors.js";
import type { SourceKind } from "../pacs/source.js";
import type { Job, JobKind, JobResult, JobState } from "./job.js";

/** The states a job can be ended in (or put back to) with an error recorded. */
export type ErrorState = "failed" | "dead" | "skipped" | "cancelled" | "queued";

/**
 * Where jobs, the ingest cursors and the ingest modes' bookkeeping live. The worker, the API, the ingest modes and
 * the node depend on this, never on an engine: the embedded SQLite store and a shared one implement it. Every method
 * is asynchronous because a shared store is across a network; every state change is one transaction.
 *
 * The promises it keeps: one route job per study and one segment job per (study, series, model, model version,
 * destination), however often a study is announced; the ingest cursor advances in the transaction that records the
 * jobs it produced; a claimed job is handed to one worker at a time.
 */
export interface JobStore {
  cursor(name: string): Promise<number | undefined>;

  /**
   * Records announced studies as route jobs and advances the ingest cursor in one transaction. A study announced
   * again whose route job is done or skipped is routed again; one queued, running, or ended in error is left as it
   * is. Returns the number of route jobs made or queued again.
   */
  enqueue(studyUIDs: readonly string[], cursor?: { name: string; value: number }, source?: SourceKind): Promise<number>;

  /**
   * QIDO polling: records a study's instance count as seen at `now`, and announces the study when the count has
   * not changed for `quietMs`. Returns whether the study was announced.
   */
  observeStudy(studyUID: string, instances: number, now: number, quietMs: number): Promise<boolean>;

  /**
   * STOW-RS: notes that instances of a study were just received (its quiet period starts again), and which series
   * had an instance replaced by other content (`stow.duplicates: "overwrite"`): those are redone by the study's next
   * route job (see `complete`).
   */
  notePushed(studyUID: string, now: number, replacedSeries?: readonly string[]): Promise<void>;

  /** STOW-RS: announces every pushed study quiet for `quietMs` since its last announcement; returns their UIDs. */
  queueQuietPushed(now: number, quietMs: number): Promise<string[]>;

  /** Puts back jobs a crash of this node left running; returns how many. Called once at start-up. */
  recoverInterrupted(): Promise<number>;

  /** Takes the oldest due queued job and marks it running (attempts + 1), atomically. */
  claimNext(now?: number): Promise<Job | undefined>;

  /**
   * Ends a claimed job done. For a route job, in the same transaction, makes the segment jobs it found (each once,
   * with its output UIDs fixed now); returns how many were new or redone.
   * Redone: of the jobs it found, those whose series `notePushed` named as replaced before this route job was
   * claimed (its `updatedAt`) and that already exist are queued again with fresh attempts: a done one with new output
   * UIDs, its old ones appended to `segment.superseded` (the new result supersedes it); a failed or dead one with its
   * UIDs kept; one queued, running, skipped or cancelled is left as it is. Those replaced marks are then cleared.
   */
  complete(job: Job, result: JobResult): Promise<number>;

  /** Ends a claimed job as failed, dead, skipped or cancelled, or queues it again until `retryAt`, with the error. */
  finishWithError(job: Job, state: ErrorState, err: DelineateError, retryAt?: number): Promise<void>;

  /** Cancels a queued job at once; asks a running one to stop at its next stage. Undefined: no such job. */
  cancel(id: string): Promise<"cancelled" | "requested" | "final" | undefined>;

  /** Whether a cancel was asked for while the job ran. */
  cancelRequested(id: string): Promise<boolean>;

  /**
   * Queues a failed, dead, skipped or cancelled job again, with fresh attempts and its output UIDs kept. False
   * when the job is in another state, undefined when there is no such job.
   */
  retry(id: string): Promise<boolean | undefined>;

  get(id: string): Promise<Job | undefined>;

  /** Newest first. */
  list(filter?: { state?: JobState; kind?: JobKind; studyInstanceUID?: string }, limit?: number): Promise<Job[]>;

  /**
   * One page of jobs, newest first by (created time, id), starting after `after` (the last job of the page before)
   * when given: a keyset, so a page does not shift as new jobs arrive.
   */
  listPage(
    filter: { state?: JobState; kind?: JobKind; studyInstanceUID?: string },
    limit: number,
    after?: { createdAt: number; id: string },
  ): Promise<Job[]>;

  /**
   * Route jobs of `source` in state queued (not yet routed, or waiting to be tried again, e.g. for their study to
   * appear): what the webhook's cap, ingest.maxPendingStudies, counts.
   */
  pendingRoutes(source: SourceKind): Promise<number>;

  /**
   * Deletes route jobs that ended failed with `code` and have not changed since before `before` (epoch ms); returns
   * how many. Used for DLN_ERR_STUDY_NOT_FOUND: jobs of studies that never existed are not kept for ever.
   */
  deleteFailedRoutes(code: ErrorCode, before: number): Promise<number>;

  /** Jobs per state, of one kind or all. */
  counts(kind?: JobKind): Promise<Record<JobState, number>>;

  /** Jobs changed at or after `since` (epoch ms), newest change first (the dashboard's last-24-hours figures). */
  updatedSince(since: number, limit?: number): Promise<Job[]>;

  /** When the newest route job of each source was made (a study first announced), epoch ms. */
  lastAnnounced(): Promise<Partial<Record<SourceKind, number>>>;

  close(): Promise<void>;
}
