import type { Job, JobKind, JobState } from "../../jobs/job.js";
import type { Notification } from "../../notify/outbox.js";
import type { SourceKind } from "../../pacs/source.js";

/** A value now or later: the embedded store answers at once, a shared one over the network. */
type Maybe<T> = T | Promise<T>;

/**
 * The job store as the dashboard uses it: its public read methods, two small queries of its own (`updatedSince`,
 * `lastAnnounced`), and retry/cancel. Every call is awaited, so a synchronous store and an asynchronous JobStore
 * both fit.
 */
export interface DashboardStore {
  get(id: string): Maybe<Job | undefined>;
  /** newest first */
  list(filter?: { state?: JobState; kind?: JobKind; studyInstanceUID?: string }, limit?: number): Maybe<Job[]>;
  counts(kind?: JobKind): Maybe<Record<JobState, number>>;
  /** jobs changed at or after `since` (epoch ms), newest change first */
  updatedSince(since: number, limit?: number): Maybe<Job[]>;
  /** when the newest route job of each source was made */
  lastAnnounced(): Maybe<Partial<Record<SourceKind, number>>>;
  retry(id: string): Maybe<boolean | undefined>;
  cancel(id: string): Maybe<"cancelled" | "requested" | "final" | undefined>;
  /** a job's notifications (src/notify) */
  notifications(jobId: string): Maybe<Notification[]>;
}

/** A segment job's target (series, model, rule, destination, output UIDs); undefined for a route job. */
export const segmentOf = (job: Job) => (job.kind === "segment" ? job.segment : undefined);
