import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";

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
