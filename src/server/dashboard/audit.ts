import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { DelineateError } from "../../errors.js";
import type { Job, JobResult } from "../../jobs/job.js";
import { segmentOf } from "./jobReader.js";

/** One thing done to a job from outside the worker: a retry or a cancel, and through which door. */
export interface AuditEvent {
  jobId: string;
  at: number;
  action: string;
  actor: string;
}

/**
 * The audit trail of API and dashboard actions on jobs (retried, cancelled), kept in its own SQLite file beside the
 * job store: the store is being reshaped behind an interface (and a PostgreSQL implementation), and this trail
 * needs nothing from its transactions. Append-only; who acted is the door used ("api" or "dashboard"), since the
 * node has one shared token and no user accounts.
 */
export class AuditLog {
  private readonly db: Database.Database;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    this.db = new Database(path.join(dataDir, "audit.sqlite"));
    this.db.pragma("journal_mode = WAL");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS job_events (
        job_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events (job_id, at);
    `);
  }

  record(jobId: string, action: string, actor: string, at = Date.now()): void {
    this.db
      .prepare("INSERT INTO job_events (job_id, at, action, actor) VALUES (?, ?, ?, ?)")
      .run(jobId, at, action, actor);
  }

  /** The events of these jobs, oldest first. */
  events(jobIds: readonly string[]): AuditEvent[] {
    if (!jobIds.length) return [];
    const rows = this.db
      .prepare(
        `SELECT job_id, at, action, actor FROM job_events WHERE job_id IN (${jobIds.map(() => "?").join(",")}) ORDER BY at, rowid`,
      )
      .all(...jobIds) as { job_id: string; at: number; action: string; actor: string }[];
    return rows.map((r) => ({ jobId: r.job_id, at: r.at, action: r.action, actor: r.actor }));
  }

  close(): void {
    this.db.close();
  }
}

/**
 * A job runner that writes each attempt to the audit trail: when it started, on which worker, and how it ended
 * (what was stored, or the error code). The store keeps only the attempt count; this keeps every attempt.
 */
export function auditedRun<R extends JobResult>(
  audit: AuditLog,
  worker: string,
  run: (job: Job) => Promise<R>,
): (job: Job) => Promise<R> {
  return async (job) => {
    audit.record(job.id, `attempt ${job.attempts} started`, worker);
    try {
      const result = await run(job);
      const outcome =
        result.kind === "route"
          ? `routed: ${result.jobs.length} series × model`
          : result.alreadyStored
            ? "results already in the destination"
            : `stored ${segmentOf(job)?.outputs.join(", ") ?? "results"}`;
      audit.record(job.id, `attempt ${job.attempts} ended: ${outcome}`, worker);
      return result;
    } catch (err) {
      const code = err instanceof DelineateError ? err.code : "DLN_ERR_INTERNAL";
      audit.record(job.id, `attempt ${job.attempts} ended: ${code}`, worker);
      throw err;
    }
  };
}
