import { DelineateError, type ErrorCode } from "../errors.js";
import type { Notification, NotificationOutcome, NotifierName } from "../notify/outbox.js";
import type { SourceKind } from "../pacs/source.js";
import type { Job, JobKind, JobResult, JobState } from "./job.js";

/** The states a job can be ended in (or put back to) with an error recorded. */
export type ErrorState = "failed" | "dead" | "skipped" | "cancelled" | "queued";

export interface NodeBeat {
  workerId: string;
  roles: readonly string[];
  /** the models its worker runs (none without the worker role) */
  models: readonly string[];
}

export interface ClusterStatus {
  nodes: (NodeBeat & { lastSeen: number })[];
  /** segment jobs waiting, per model; route jobs under "route" */
  queued: Record<string, number>;
  /** running jobs whose lease has expired (their worker died or froze; the next claim takes them over) */
  leasesExpired: number;
  /** claims that took a job over from a worker whose lease had expired, ever */
  takenOver: number;
}

/** Every row of a store, table by table, as `delineate store migrate` carries them (the column names both share). */
export interface StoreRows {
  jobs: Record<string, unknown>[];
  cursors: Record<string, unknown>[];
  pushed_studies: Record<string, unknown>[];
  /** series replaced by STOW-RS overwrite, not yet redone */
  pushed_replaced: Record<string, unknown>[];
  polled_studies: Record<string, unknown>[];
}

/** Who claims jobs through a store, and for how long a claim holds without a heartbeat. */
export interface WorkerIdentity {
  /** host name:pid, recorded on every attempt */
  workerId: string;
  leaseMs: number;
  /** the models this worker runs (placement: a GPU machine the GPU models); absent, every model */
  models?: readonly string[];
}

/** The error a fenced write raises: the job is no longer held by this attempt. */
export function leaseLost(job: Job): DelineateError {
  return new DelineateError(
    "DLN_ERR_LEASE_LOST",
    `job ${job.id} attempt ${job.attempts} lost its lease: another worker took the job over; this attempt writes nothing`,
    { studyInstanceUID: job.studyInstanceUID },
  );
}

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

  /**
   * Puts back jobs a crash of this node left running, and notifications it left sending (as pending, due now);
   * returns how many jobs. Called once at start-up. The embedded store has one node, so every running job is its
   * own; a shared store leaves them to lease expiry.
   */
  recoverInterrupted(): Promise<number>;

  /** Records that a node is alive (every few seconds), with what it does; shown by /healthz across the cluster. */
  beat(node: NodeBeat, now?: number): Promise<void>;

  /** The cluster as the store sees it: nodes and their last beat, queue depth per model, expired leases, takeovers. */
  cluster(now?: number): Promise<ClusterStatus>;

  /**
   * Takes the oldest due queued job, or a running one whose lease expired (its worker died or froze), and marks it
   * running for this worker (attempts + 1: the fencing token; the lease runs `leaseMs` from `now`), atomically: one
   * worker gets it. A job whose lease expired after a cancel was asked for ends cancelled instead.
   */
  claimNext(now?: number): Promise<Job | undefined>;

  /** Extends the lease of a job this worker holds; false when the lease was lost (the job went to another worker). */
  heartbeat(job: Job): Promise<boolean>;

  /**
   * Ends a claimed job done. For a route job, in the same transaction, makes the segment jobs it found (each once,
   * with its output UIDs fixed now); returns how many were new or redone. For a segment job, in the same
   * transaction, writes the result's outbox rows (result.notifications), each at most once per (job, notifier,
   * resultKey).
   * Redone: of the jobs it found, those whose series `notePushed` named as replaced before this route job was
   * claimed (its `updatedAt`) and that already exist are queued again with fresh attempts: a done one with new output
   * UIDs, its old ones appended to `segment.superseded` (the new result supersedes it); a failed or dead one with its
   * UIDs kept; one queued, running, skipped or cancelled is left as it is. Those replaced marks are then cleared.
   * @throws DelineateError DLN_ERR_LEASE_LOST, writing nothing, when the job is no longer this attempt's.
   */
  complete(job: Job, result: JobResult): Promise<number>;

  /**
   * Ends a claimed job as failed, dead, skipped or cancelled, or queues it again until `retryAt`, with the error.
   * @throws DelineateError DLN_ERR_LEASE_LOST, writing nothing, when the job is no longer this attempt's.
   */
  finishWithError(job: Job, state: ErrorState, err: DelineateError, retryAt?: number): Promise<void>;

  /** Cancels a queued job at once; asks a running one to stop at its next stage. Undefined: no such job. */
  cancel(id: string): Promise<"cancelled" | "requested" | "final" | undefined>;

  /**
   * Whether a cancel was asked for while the claimed job ran; checked before each stage.
   * @throws DelineateError DLN_ERR_LEASE_LOST when the job is no longer this attempt's (the fence before storing).
   */
  cancelRequested(job: Job): Promise<boolean>;

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

  // --- the notification outbox (src/notify) ---

  /**
   * Atomically takes the oldest due (`notBefore <= now`) pending notification, of `notifier` if named, and marks it
   * sending with attempts + 1 (the fencing token): no two callers get one row. A shared store gives the claim a
   * lease (the worker's leaseMs) and also takes a sending row whose lease ran out (its sender died or froze).
   */
  claimNotification(now?: number, notifier?: NotifierName): Promise<Notification | undefined>;

  /**
   * Records one attempt's outcome on a claimed notification in one write: sent (sentAt, error cleared), pending from
   * retryAt with the error, or failed with the error.
   * @throws DelineateError DLN_ERR_LEASE_LOST, writing nothing, when the row is no longer that attempt's (sending
   * with the same attempts): another sender took it over.
   */
  finishNotification(claimed: Pick<Notification, "id" | "attempts">, outcome: NotificationOutcome): Promise<void>;

  /** A job's notifications, oldest first, payload included (what callers show is notificationSummary, never the payload). */
  notifications(jobId: string): Promise<Notification[]>;

  /**
   * Whether this process leads `name` across the cluster (the ingest pollers run on one node at a time): true while
   * it holds the lead, taken when free. The lead is lost when the process or its connection dies. The embedded
   * store has one node, which always leads.
   */
  tryLead(name: string): Promise<boolean>;

  close(): Promise<void>;
}
