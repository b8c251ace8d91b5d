import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import type { DelineateError } from "../errors.js";
import type { SourceKind } from "../pacs/source.js";
import { JOB_STATES, type Job, type JobResult, type JobState } from "./job.js";

interface Row {
  id: string;
  study_uid: string;
  source: SourceKind;
  model_id: string;
  model_version: string;
  state: JobState;
  attempts: number;
  not_before: number;
  cancel_requested: number;
  output_series_uid: string;
  output_sop_uid: string;
  series_uid: string | null;
  execution_provider: string | null;
  error_code: string | null;
  error_stage: string | null;
  error_message: string | null;
  timings: string | null;
  created_at: number;
  updated_at: number;
}

function toJob(r: Row): Job {
  return {
    id: r.id,
    studyInstanceUID: r.study_uid,
    source: r.source,
    modelId: r.model_id,
    modelVersion: r.model_version,
    state: r.state,
    attempts: r.attempts,
    notBefore: r.not_before,
    cancelRequested: r.cancel_requested === 1,
    output: { seriesInstanceUID: r.output_series_uid, sopInstanceUID: r.output_sop_uid },
    ...(r.series_uid ? { seriesInstanceUID: r.series_uid } : {}),
    ...(r.execution_provider ? { executionProvider: r.execution_provider } : {}),
    ...(r.error_code ? { error: { code: r.error_code, stage: r.error_stage, message: r.error_message ?? "" } as Job["error"] } : {}),
    ...(r.timings ? { timings: JSON.parse(r.timings) } : {}),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/**
 * The embedded job store (SQLite, WAL, synchronous FULL so a committed transition survives a crash).
 * One job per (study, model, model version): announcing a study again is a no-op.
 */
export class JobStore {
  private readonly db: Database.Database;

  constructor(dataDir: string, private readonly newUid: () => string) {
    mkdirSync(dataDir, { recursive: true });
    this.db = new Database(path.join(dataDir, "delineate.sqlite"));
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        study_uid TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT 'pacs' CHECK (source IN ('pacs', 'pushed')),
        model_id TEXT NOT NULL,
        model_version TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'dead', 'skipped', 'cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before INTEGER NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        output_series_uid TEXT NOT NULL,
        output_sop_uid TEXT NOT NULL,
        series_uid TEXT,
        execution_provider TEXT,
        error_code TEXT,
        error_stage TEXT,
        error_message TEXT,
        timings TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (study_uid, model_id, model_version)
      );
      CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, not_before, created_at);
      CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS pushed_studies (
        study_uid TEXT PRIMARY KEY,
        last_received_at INTEGER NOT NULL,
        queued INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE IF NOT EXISTS polled_studies (
        study_uid TEXT PRIMARY KEY,
        instances INTEGER NOT NULL,
        changed_at INTEGER NOT NULL,
        queued INTEGER NOT NULL DEFAULT 0
      );
    `);
  }

  close(): void {
    this.db.close();
  }

  cursor(name: string): number | undefined {
    const row = this.db.prepare("SELECT value FROM cursors WHERE name = ?").get(name) as { value: number } | undefined;
    return row?.value;
  }

  /**
   * Records announced studies as jobs and advances the ingest cursor in one transaction, so a crash
   * between the two can neither lose a study nor announce it twice. Returns the number of new jobs.
   */
  enqueue(studyUIDs: readonly string[], model: { id: string; version: string }, cursor?: { name: string; value: number }, source: SourceKind = "pacs"): number {
    const insert = this.db.prepare(
      `INSERT OR IGNORE INTO jobs (id, study_uid, source, model_id, model_version, state, output_series_uid, output_sop_uid, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)`,
    );
    const setCursor = this.db.prepare("INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value");
    return this.db.transaction(() => {
      const now = Date.now();
      let added = 0;
      for (const uid of studyUIDs) added += insert.run(randomUUID(), uid, source, model.id, model.version, this.newUid(), this.newUid(), now, now).changes;
      if (cursor) setCursor.run(cursor.name, cursor.value);
      return added;
    })();
  }

  /**
   * QIDO polling: records a study's instance count as seen now, and queues its job (once) when the count has
   * not changed for `quietMs`. Returns whether a new job was made. The counts persist, so a restart keeps the
   * quiet period it had measured and never queues a study twice.
   */
  observeStudy(studyUID: string, instances: number, now: number, quietMs: number, model: { id: string; version: string }): boolean {
    return this.db.transaction(() => {
      const row = this.db.prepare("SELECT instances, changed_at, queued FROM polled_studies WHERE study_uid = ?").get(studyUID) as
        | { instances: number; changed_at: number; queued: number }
        | undefined;
      if (!row || row.instances !== instances) {
        this.db
          .prepare("INSERT INTO polled_studies (study_uid, instances, changed_at) VALUES (?, ?, ?) ON CONFLICT(study_uid) DO UPDATE SET instances = excluded.instances, changed_at = excluded.changed_at")
          .run(studyUID, instances, now);
        return false;
      }
      if (row.queued || now - row.changed_at < quietMs) return false;
      this.db.prepare("UPDATE polled_studies SET queued = 1 WHERE study_uid = ?").run(studyUID);
      return this.enqueue([studyUID], model) > 0;
    })();
  }

  /** STOW-RS: notes that instances of a study were just received (the quiet period starts again). */
  notePushed(studyUID: string, now: number): void {
    this.db
      .prepare("INSERT INTO pushed_studies (study_uid, last_received_at) VALUES (?, ?) ON CONFLICT(study_uid) DO UPDATE SET last_received_at = excluded.last_received_at")
      .run(studyUID, now);
  }

  /** STOW-RS: queues (once) every pushed study that has received nothing for `quietMs`; returns their UIDs. */
  queueQuietPushed(now: number, quietMs: number, model: { id: string; version: string }): string[] {
    return this.db.transaction(() => {
      const due = (this.db.prepare("SELECT study_uid FROM pushed_studies WHERE queued = 0 AND last_received_at <= ?").all(now - quietMs) as { study_uid: string }[]).map((r) => r.study_uid);
      for (const uid of due) this.db.prepare("UPDATE pushed_studies SET queued = 1 WHERE study_uid = ?").run(uid);
      if (due.length) this.enqueue(due, model, undefined, "pushed");
      return due;
    })();
  }

  /** Puts back jobs a crash left running; returns how many. Called once at start-up. */
  recoverInterrupted(): number {
    const now = Date.now();
    // a job whose cancel was asked for before the crash ends cancelled rather than running again
    this.db
      .prepare("UPDATE jobs SET state = 'cancelled', error_code = 'DLN_ERR_CANCELLED', error_stage = 'jobs', error_message = 'cancelled through the API', updated_at = ? WHERE state = 'running' AND cancel_requested = 1")
      .run(now);
    return this.db.prepare("UPDATE jobs SET state = 'queued', updated_at = ? WHERE state = 'running'").run(now).changes;
  }

  /** Takes the oldest due queued job and marks it running (attempts + 1), atomically. */
  claimNext(now = Date.now()): Job | undefined {
    return this.db.transaction(() => {
      const row = this.db
        .prepare("SELECT * FROM jobs WHERE state = 'queued' AND not_before <= ? ORDER BY created_at, rowid LIMIT 1")
        .get(now) as Row | undefined;
      if (!row) return undefined;
      this.db.prepare("UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = ? WHERE id = ?").run(now, row.id);
      return toJob({ ...row, state: "running", attempts: row.attempts + 1, updated_at: now });
    })();
  }

  complete(id: string, result: JobResult): void {
    this.db
      .prepare(
        `UPDATE jobs SET state = 'done', series_uid = COALESCE(NULLIF(?, ''), series_uid), execution_provider = ?, timings = ?, error_code = NULL, error_stage = NULL, error_message = NULL, updated_at = ? WHERE id = ?`,
      )
      .run(result.seriesInstanceUID, result.executionProvider, JSON.stringify(result.timings), Date.now(), id);
  }

  /** Ends a job as failed, dead, skipped or cancelled, or puts it back in the queue until `retryAt`, with the error recorded. */
  finishWithError(id: string, state: "failed" | "dead" | "skipped" | "cancelled" | "queued", err: DelineateError, retryAt = 0): void {
    this.db
      .prepare("UPDATE jobs SET state = ?, error_code = ?, error_stage = ?, error_message = ?, not_before = ?, series_uid = COALESCE(?, series_uid), updated_at = ? WHERE id = ?")
      .run(state, err.code, err.stage, err.message, retryAt, (err.context.seriesInstanceUID as string | undefined) ?? null, Date.now(), id);
  }

  /**
   * Cancels a queued job at once; asks a running one to stop at its next stage boundary.
   * Returns what happened, or undefined when there is no such job.
   */
  cancel(id: string): "cancelled" | "requested" | "final" | undefined {
    return this.db.transaction(() => {
      const job = this.get(id);
      if (!job) return undefined;
      const now = Date.now();
      if (job.state === "queued") {
        this.db
          .prepare("UPDATE jobs SET state = 'cancelled', error_code = 'DLN_ERR_CANCELLED', error_stage = 'jobs', error_message = 'cancelled through the API before it ran', updated_at = ? WHERE id = ?")
          .run(now, id);
        return "cancelled";
      }
      if (job.state === "running") {
        this.db.prepare("UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE id = ?").run(now, id);
        return "requested";
      }
      return "final";
    })();
  }

  /** Whether a cancel was asked for while the job ran. */
  cancelRequested(id: string): boolean {
    const row = this.db.prepare("SELECT cancel_requested FROM jobs WHERE id = ?").get(id) as { cancel_requested: number } | undefined;
    return row?.cancel_requested === 1;
  }

  /**
   * Queues a failed, dead, skipped or cancelled job again, with fresh attempts; its output UIDs stay, so a
   * result that did reach the PACS is still recognised. Returns false when the job is not in such a state.
   */
  retry(id: string): boolean | undefined {
    const job = this.get(id);
    if (!job) return undefined;
    return (
      this.db
        .prepare(
          `UPDATE jobs SET state = 'queued', attempts = 0, not_before = 0, cancel_requested = 0, error_code = NULL, error_stage = NULL, error_message = NULL, updated_at = ?
           WHERE id = ? AND state IN ('failed', 'dead', 'skipped', 'cancelled')`,
        )
        .run(Date.now(), id).changes === 1
    );
  }

  get(id: string): Job | undefined {
    const row = this.db.prepare("SELECT * FROM jobs WHERE id = ?").get(id) as Row | undefined;
    return row && toJob(row);
  }

  list(filter: { state?: JobState; studyInstanceUID?: string } = {}, limit = 100): Job[] {
    const rows = this.db
      .prepare("SELECT * FROM jobs WHERE (@state IS NULL OR state = @state) AND (@study IS NULL OR study_uid = @study) ORDER BY created_at DESC, rowid DESC LIMIT @limit")
      .all({ state: filter.state ?? null, study: filter.studyInstanceUID ?? null, limit }) as Row[];
    return rows.map(toJob);
  }

  counts(): Record<JobState, number> {
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const r of this.db.prepare("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").all() as { state: JobState; n: number }[]) out[r.state] = r.n;
    return out;
  }
}
