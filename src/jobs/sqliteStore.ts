import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { DelineateError, type ErrorCode } from "../errors.js";
import type { Notification, NotificationOutcome, NotifierName } from "../notify/outbox.js";
import type { SourceKind } from "../pacs/source.js";
import type { OutputKind } from "../route/rules.js";
import { defaultWorker } from "./identity.js";
import {
  JOB_STATES,
  type Job,
  type JobKind,
  type JobResult,
  type JobState,
  type OutputUids,
  type SegmentTarget,
} from "./job.js";
import { jobFromRow } from "./jobRow.js";
import {
  type ClusterStatus,
  type ErrorState,
  type JobStore,
  leaseLost,
  type NodeBeat,
  type StoreRows,
  type WorkerIdentity,
} from "./jobStore.js";
import { OUTBOX_TABLE, SqliteOutbox } from "./sqliteOutbox.js";

const SCHEMA_VERSION = 7;

/** The fencing token: a write for a claimed job (id, attempt) applies only while that attempt still holds it. */
const FENCE = "id = ? AND attempts = ? AND state = 'running'";
/** A running job whose cancel was asked for and whose worker is gone ends cancelled rather than running again. */
const CANCEL_EXPIRED = `UPDATE jobs SET state = 'cancelled', error_code = 'DLN_ERR_CANCELLED', error_stage = 'jobs',
  error_message = 'cancelled through the API', updated_at = ? WHERE state = 'running' AND cancel_requested = 1`;

/** Each step takes the schema from the version before it; applied in order, each in one transaction. */
const STEPS: Record<number, string> = {
  3: "ALTER TABLE jobs ADD COLUMN warnings TEXT",
  4: `ALTER TABLE jobs ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN attempt_log TEXT;`,
  5: `ALTER TABLE jobs ADD COLUMN takeovers INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE nodes (worker_id TEXT PRIMARY KEY, roles TEXT NOT NULL, models TEXT NOT NULL, last_seen INTEGER NOT NULL);`,
  6: OUTBOX_TABLE,
  // STOW-RS overwrite: the series whose instances were replaced, redone by the study's next route job
  7: `ALTER TABLE jobs ADD COLUMN superseded_uids TEXT;
      CREATE TABLE pushed_replaced (
        study_uid TEXT NOT NULL,
        series_uid TEXT NOT NULL,
        noted_at INTEGER NOT NULL,
        PRIMARY KEY (study_uid, series_uid)
      );`,
};

const JOBS_TABLE = `
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('route', 'segment')),
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT 'pacs' CHECK (source IN ('pacs', 'pushed')),
    model_id TEXT NOT NULL DEFAULT '',
    model_version TEXT NOT NULL DEFAULT '',
    rule TEXT,
    destination TEXT NOT NULL DEFAULT '',
    outputs TEXT,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'dead', 'skipped', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    output_uids TEXT,
    execution_provider TEXT,
    error_code TEXT,
    error_stage TEXT,
    error_message TEXT,
    timings TEXT,
    routing TEXT,
    warnings TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (kind, study_uid, series_uid, model_id, model_version, destination)
  );
  CREATE INDEX jobs_by_state ON jobs (state, not_before, created_at);
  CREATE INDEX jobs_by_study ON jobs (study_uid);
`;

/**
 * The embedded job store (SQLite, WAL, synchronous FULL so a committed transition survives a crash).
 * One route job per study and one segment job per (study, series, model, model version, destination): announcing
 * a study again routes it again, and routing it again makes no job twice.
 */
export class SqliteJobStore implements JobStore {
  private readonly db: Database.Database;
  private readonly outbox: SqliteOutbox;

  constructor(
    /** the database file (its folder is made when missing) */
    file: string,
    private readonly newUid: () => string,
    private readonly worker: WorkerIdentity = defaultWorker(),
  ) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    this.db.exec(`
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
    this.migrate();
    this.outbox = new SqliteOutbox(this.db);
  }

  /**
   * Creates the jobs table, or brings one from an older Delineate up to date in one transaction. Version 1 had one
   * job per (study, model, version): one that had chosen its series becomes a segment job with its output UIDs
   * kept (so a SEG it stored is still recognised); one that had not becomes the study's route job. Version 2 lacked
   * the warnings column; versions 4-5 added leases and node beats, version 6 the notification outbox, version 7
   * the superseded_uids column and the pushed_replaced table (STOW-RS overwrite).
   */
  private migrate(): void {
    let version = this.db.pragma("user_version", { simple: true }) as number;
    if (version > SCHEMA_VERSION)
      throw new DelineateError(
        "DLN_ERR_CONFIG_INVALID",
        `the job store's schema is version ${version}, newer than this Delineate's ${SCHEMA_VERSION}: upgrade Delineate`,
      );
    if (version < 2) {
      this.createOrUpgradeV1();
      version = 3;
    }
    for (let v = version + 1; v <= SCHEMA_VERSION; v++) {
      this.db.transaction(() => {
        this.db.exec(STEPS[v] ?? "");
        this.db.pragma(`user_version = ${v}`);
      })();
    }
  }

  /** Version 1 (or no jobs table) to version 3. */
  private createOrUpgradeV1(): void {
    const hasJobs =
      this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").get() !== undefined;
    this.db.transaction(() => {
      if (hasJobs) this.db.exec("DROP INDEX IF EXISTS jobs_by_state; ALTER TABLE jobs RENAME TO jobs_v1;");
      this.db.exec(JOBS_TABLE);
      this.db.exec(OUTBOX_TABLE);
      if (hasJobs) {
        this.db.exec(`
          INSERT OR IGNORE INTO jobs (id, kind, study_uid, series_uid, source, model_id, model_version, rule, destination, outputs, state, attempts, not_before,
            cancel_requested, output_uids, execution_provider, error_code, error_stage, error_message, timings, created_at, updated_at)
          SELECT id, 'segment', study_uid, series_uid, source, model_id, model_version, 'default', 'pacs', '["seg"]', state, attempts, not_before,
            cancel_requested, json_object('seg', json_object('seriesInstanceUID', output_series_uid, 'sopInstanceUID', output_sop_uid)), execution_provider, error_code, error_stage, error_message, timings, created_at, updated_at
          FROM jobs_v1 WHERE series_uid IS NOT NULL AND series_uid != '';
          INSERT OR IGNORE INTO jobs (id, kind, study_uid, source, state, attempts, not_before, cancel_requested, error_code, error_stage, error_message, created_at, updated_at)
          SELECT id, 'route', study_uid, source, state, attempts, not_before, cancel_requested, error_code, error_stage, error_message, created_at, updated_at
          FROM jobs_v1 WHERE series_uid IS NULL OR series_uid = '';
          DROP TABLE jobs_v1;
        `);
      }
      this.db.pragma("user_version = 3");
    })();
  }

  /** Every row, for `delineate store migrate` (the node using this store stopped, its running jobs queued again). */
  async exportRows(): Promise<StoreRows> {
    const all = (table: string) =>
      this.db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all() as Record<string, unknown>[];
    return {
      jobs: all("jobs"),
      cursors: all("cursors"),
      pushed_studies: all("pushed_studies"),
      pushed_replaced: all("pushed_replaced"),
      polled_studies: all("polled_studies"),
    };
  }

  async tryLead(_name: string): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.db.close();
  }

  async cursor(name: string): Promise<number | undefined> {
    const row = this.db.prepare("SELECT value FROM cursors WHERE name = ?").get(name) as { value: number } | undefined;
    return row?.value;
  }

  /**
   * Records announced studies as route jobs and advances the ingest cursor in one transaction, so a crash between
   * the two can neither lose a study nor announce it twice. A study announced again whose route job is done or
   * skipped is routed again (a series may have arrived since); one queued, running, or ended in error is left as it
   * is. Returns the number of route jobs made or queued again.
   * A study pushed to STOW-RS stays pushed when another source announces it again: the PACS's copy of it may hold
   * only our own results (the change feed announces them), and routing that copy ended a done study skipped.
   */
  async enqueue(
    studyUIDs: readonly string[],
    cursor?: { name: string; value: number },
    source: SourceKind = "pacs",
  ): Promise<number> {
    return this.enqueueNow(studyUIDs, cursor, source);
  }

  /** enqueue, inside a transaction of the caller's */
  private enqueueNow(
    studyUIDs: readonly string[],
    cursor?: { name: string; value: number },
    source: SourceKind = "pacs",
  ): number {
    const upsert = this.db.prepare(
      `INSERT INTO jobs (id, kind, study_uid, source, state, created_at, updated_at) VALUES (?, 'route', ?, ?, 'queued', ?, ?)
       ON CONFLICT (kind, study_uid, series_uid, model_id, model_version, destination) DO UPDATE
         SET state = 'queued', source = CASE WHEN jobs.source = 'pushed' THEN 'pushed' ELSE excluded.source END, attempts = 0, not_before = 0, error_code = NULL, error_stage = NULL, error_message = NULL,
             updated_at = excluded.updated_at
         WHERE state IN ('done', 'skipped')`,
    );
    const setCursor = this.db.prepare(
      "INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    );
    return this.db.transaction(() => {
      const now = Date.now();
      let added = 0;
      for (const uid of studyUIDs) added += upsert.run(randomUUID(), uid, source, now, now).changes;
      if (cursor) setCursor.run(cursor.name, cursor.value);
      return added;
    })();
  }

  /**
   * QIDO polling: records a study's instance count as seen now, and announces the study when the count has not
   * changed for `quietMs`; a count that changes later (new series) announces it again once quiet. Returns whether
   * the study was announced. The counts persist, so a restart keeps the quiet period it had measured.
   */
  async observeStudy(studyUID: string, instances: number, now: number, quietMs: number): Promise<boolean> {
    return this.db.transaction(() => {
      const row = this.db
        .prepare("SELECT instances, changed_at, queued FROM polled_studies WHERE study_uid = ?")
        .get(studyUID) as { instances: number; changed_at: number; queued: number } | undefined;
      if (!row || row.instances !== instances) {
        this.db
          .prepare(
            "INSERT INTO polled_studies (study_uid, instances, changed_at) VALUES (?, ?, ?) ON CONFLICT(study_uid) DO UPDATE SET instances = excluded.instances, changed_at = excluded.changed_at",
          )
          .run(studyUID, instances, now);
        if (row) this.db.prepare("UPDATE polled_studies SET queued = 0 WHERE study_uid = ?").run(studyUID);
        return false;
      }
      if (row.queued || now - row.changed_at < quietMs) return false;
      this.db.prepare("UPDATE polled_studies SET queued = 1 WHERE study_uid = ?").run(studyUID);
      return this.enqueueNow([studyUID]) > 0;
    })();
  }

  /**
   * STOW-RS: notes that instances of a study were just received (the quiet period starts again, and the study will
   * be announced again), and the series that had an instance replaced, for the next route job to redo.
   */
  async notePushed(studyUID: string, now: number, replacedSeries: readonly string[] = []): Promise<void> {
    const replaced = this.db.prepare(
      "INSERT INTO pushed_replaced (study_uid, series_uid, noted_at) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET noted_at = excluded.noted_at",
    );
    this.db.transaction(() => {
      this.db
        .prepare(
          "INSERT INTO pushed_studies (study_uid, last_received_at) VALUES (?, ?) ON CONFLICT(study_uid) DO UPDATE SET last_received_at = excluded.last_received_at, queued = 0",
        )
        .run(studyUID, now);
      for (const series of replacedSeries) replaced.run(studyUID, series, now);
    })();
  }

  /** STOW-RS: announces every pushed study that has received nothing for `quietMs` since its last announcement; returns their UIDs. */
  async queueQuietPushed(now: number, quietMs: number): Promise<string[]> {
    return this.db.transaction(() => {
      const due = (
        this.db
          .prepare("SELECT study_uid FROM pushed_studies WHERE queued = 0 AND last_received_at <= ?")
          .all(now - quietMs) as { study_uid: string }[]
      ).map((r) => r.study_uid);
      for (const uid of due) this.db.prepare("UPDATE pushed_studies SET queued = 1 WHERE study_uid = ?").run(uid);
      if (due.length) this.enqueueNow(due, undefined, "pushed");
      return due;
    })();
  }

  /** Puts back jobs a crash left running; returns how many. Called once at start-up. */
  async recoverInterrupted(): Promise<number> {
    const now = Date.now();
    // a job whose cancel was asked for before the crash ends cancelled rather than running again
    this.db.prepare(CANCEL_EXPIRED).run(now);
    this.outbox.recover(now);
    return this.db.prepare("UPDATE jobs SET state = 'queued', updated_at = ? WHERE state = 'running'").run(now).changes;
  }

  async claimNext(now = Date.now()): Promise<Job | undefined> {
    const served = this.worker.models ? JSON.stringify(this.worker.models) : null;
    return this.db.transaction(() => {
      this.db.prepare(`${CANCEL_EXPIRED} AND lease_until < ?`).run(now, now);
      const row = this.db
        .prepare(
          `SELECT id FROM jobs WHERE ((state = 'queued' AND not_before <= ?) OR (state = 'running' AND lease_until < ?))
             AND (? IS NULL OR kind = 'route' OR model_id IN (SELECT value FROM json_each(?)))
           ORDER BY created_at, rowid LIMIT 1`,
        )
        .get(now, now, served, served) as { id: string } | undefined;
      if (!row) return undefined;
      const claimed = this.db
        .prepare(
          `UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?, updated_at = ?,
             takeovers = takeovers + (state = 'running'),
             attempt_log = json_insert(COALESCE(attempt_log, '[]'), '$[#]', json_object('attempt', attempts + 1, 'workerId', ?, 'startedAt', ?))
           WHERE id = ? RETURNING *`,
        )
        .get(now + this.worker.leaseMs, now, this.worker.workerId, now, row.id);
      return jobFromRow(claimed);
    })();
  }

  async beat(node: NodeBeat, now = Date.now()): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO nodes (worker_id, roles, models, last_seen) VALUES (?, ?, ?, ?)
         ON CONFLICT (worker_id) DO UPDATE SET roles = excluded.roles, models = excluded.models, last_seen = excluded.last_seen`,
      )
      .run(node.workerId, JSON.stringify(node.roles), JSON.stringify(node.models), now);
  }

  async cluster(now = Date.now()): Promise<ClusterStatus> {
    const nodes = (
      this.db.prepare("SELECT * FROM nodes ORDER BY worker_id").all() as {
        worker_id: string;
        roles: string;
        models: string;
        last_seen: number;
      }[]
    ).map((n) => ({
      workerId: n.worker_id,
      roles: JSON.parse(n.roles) as string[],
      models: JSON.parse(n.models) as string[],
      lastSeen: n.last_seen,
    }));
    const queued = Object.fromEntries(
      (
        this.db
          .prepare(
            "SELECT CASE kind WHEN 'route' THEN 'route' ELSE model_id END AS k, COUNT(*) AS n FROM jobs WHERE state = 'queued' GROUP BY k",
          )
          .all() as { k: string; n: number }[]
      ).map((r) => [r.k, r.n]),
    );
    const figures = this.db
      .prepare(
        "SELECT COALESCE(SUM(state = 'running' AND lease_until < ?), 0) AS expired, COALESCE(SUM(takeovers), 0) AS takeovers FROM jobs",
      )
      .get(now) as { expired: number; takeovers: number };
    return { nodes, queued, leasesExpired: figures.expired, takenOver: figures.takeovers };
  }

  async heartbeat(job: Job): Promise<boolean> {
    const now = Date.now();
    return (
      this.db
        .prepare(`UPDATE jobs SET lease_until = ? WHERE ${FENCE}`)
        .run(now + this.worker.leaseMs, job.id, job.attempts).changes === 1
    );
  }

  /** Runs a fenced write: nothing is written unless `job` still holds its attempt. */
  private fenced<T>(job: Job, write: () => T): T {
    return this.db.transaction(() => {
      if (!this.db.prepare(`SELECT 1 FROM jobs WHERE ${FENCE}`).get(job.id, job.attempts)) throw leaseLost(job);
      return write();
    })();
  }

  /**
   * Ends a job done. For a route job, in the same transaction, makes the segment jobs it found (each once, with
   * its output UIDs fixed now) and redoes those of series replaced since (see JobStore.complete); returns how many
   * were new or redone.
   */
  async complete(job: Job, result: JobResult): Promise<number> {
    const id = job.id;
    return this.fenced(job, () => {
      const now = Date.now();
      if (result.kind === "segment") {
        this.db
          .prepare(
            "UPDATE jobs SET state = 'done', execution_provider = ?, timings = ?, warnings = ?, error_code = NULL, error_stage = NULL, error_message = NULL, updated_at = ? WHERE id = ?",
          )
          .run(
            result.executionProvider,
            JSON.stringify(result.timings),
            result.warnings.length ? JSON.stringify(result.warnings) : null,
            now,
            id,
          );
        // the outbox, in this transaction: a result recorded done always has its notifications
        if (result.notifications?.length) this.outbox.add(id, result.notifications, now);
        return 0;
      }
      this.db
        .prepare(
          "UPDATE jobs SET state = 'done', timings = ?, routing = ?, error_code = NULL, error_stage = NULL, error_message = NULL, updated_at = ? WHERE id = ?",
        )
        .run(JSON.stringify(result.timings), JSON.stringify(result.decisions), now, id);
      const insert = this.db.prepare(
        `INSERT OR IGNORE INTO jobs (id, kind, study_uid, series_uid, source, model_id, model_version, rule, destination, outputs, state, output_uids, created_at, updated_at)
         VALUES (?, 'segment', ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)`,
      );
      const replaced = this.replacedSeries(job);
      let added = 0;
      for (const t of result.jobs) {
        const uids = this.outputUids(t.outputs);
        if (replaced.has(t.seriesInstanceUID)) added += this.redo(job.studyInstanceUID, t, uids, now);
        added += insert.run(
          randomUUID(),
          job.studyInstanceUID,
          t.seriesInstanceUID,
          job.source,
          t.modelId,
          t.modelVersion,
          t.rule,
          t.destination,
          JSON.stringify(t.outputs),
          JSON.stringify(uids),
          now,
          now,
        ).changes;
      }
      this.db
        .prepare("DELETE FROM pushed_replaced WHERE study_uid = ? AND noted_at <= ?")
        .run(job.studyInstanceUID, job.updatedAt);
      return added;
    });
  }

  private outputUids(outputs: readonly OutputKind[]): Record<string, OutputUids> {
    return Object.fromEntries(
      outputs.map((kind) => [kind, { seriesInstanceUID: this.newUid(), sopInstanceUID: this.newUid() }]),
    );
  }

  /** The series of a route job's study replaced (STOW-RS overwrite) before the job was claimed. */
  private replacedSeries(job: Job): Set<string> {
    const rows = this.db
      .prepare("SELECT series_uid FROM pushed_replaced WHERE study_uid = ? AND noted_at <= ?")
      .all(job.studyInstanceUID, job.updatedAt) as { series_uid: string }[];
    return new Set(rows.map((r) => r.series_uid));
  }

  /**
   * Queues an existing segment job again because its series changed: a done one with new output UIDs (`uids`), its
   * old ones appended to superseded_uids; a failed or dead one with its UIDs kept. Returns 1 when it was queued.
   */
  private redo(study: string, t: SegmentTarget, uids: Record<string, OutputUids>, now: number): number {
    const key = [study, t.seriesInstanceUID, t.modelId, t.modelVersion, t.destination];
    const where = `kind = 'segment' AND study_uid = ? AND series_uid = ? AND model_id = ? AND model_version = ? AND destination = ?`;
    const requeue = `state = 'queued', attempts = 0, not_before = 0, cancel_requested = 0, error_code = NULL, error_stage = NULL, error_message = NULL, updated_at = ?`;
    const done = this.db
      .prepare(
        `UPDATE jobs SET ${requeue}, superseded_uids = json_insert(coalesce(superseded_uids, '[]'), '$[#]', json(output_uids)), output_uids = ?
         WHERE ${where} AND state = 'done'`,
      )
      .run(now, JSON.stringify(uids), ...key).changes;
    if (done) return done;
    return this.db.prepare(`UPDATE jobs SET ${requeue} WHERE ${where} AND state IN ('failed', 'dead')`).run(now, ...key)
      .changes;
  }

  /** Ends a job as failed, dead, skipped or cancelled, or puts it back in the queue until `retryAt`, with the error recorded. */
  async finishWithError(job: Job, state: ErrorState, err: DelineateError, retryAt = 0): Promise<void> {
    const changes = this.db
      .prepare(
        `UPDATE jobs SET state = ?, error_code = ?, error_stage = ?, error_message = ?, not_before = ?, updated_at = ? WHERE ${FENCE}`,
      )
      .run(state, err.code, err.stage, err.message, retryAt, Date.now(), job.id, job.attempts).changes;
    if (changes !== 1) throw leaseLost(job);
  }

  /**
   * Cancels a queued job at once; asks a running one to stop at its next stage boundary.
   * Returns what happened, or undefined when there is no such job.
   */
  async cancel(id: string): Promise<"cancelled" | "requested" | "final" | undefined> {
    return this.db.transaction(() => {
      const job = this.getNow(id);
      if (!job) return undefined;
      const now = Date.now();
      if (job.state === "queued") {
        this.db
          .prepare(
            "UPDATE jobs SET state = 'cancelled', error_code = 'DLN_ERR_CANCELLED', error_stage = 'jobs', error_message = 'cancelled through the API before it ran', updated_at = ? WHERE id = ?",
          )
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

  async cancelRequested(job: Job): Promise<boolean> {
    const row = this.db.prepare(`SELECT cancel_requested FROM jobs WHERE ${FENCE}`).get(job.id, job.attempts) as
      | { cancel_requested: number }
      | undefined;
    if (!row) throw leaseLost(job);
    return row.cancel_requested === 1;
  }

  /**
   * Queues a failed, dead, skipped or cancelled job again, with fresh attempts; its output UIDs stay, so a
   * result that did reach the PACS is still recognised. Returns false when the job is not in such a state.
   */
  async retry(id: string): Promise<boolean | undefined> {
    const job = this.getNow(id);
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

  async get(id: string): Promise<Job | undefined> {
    return this.getNow(id);
  }

  private getNow(id: string): Job | undefined {
    const row = this.db.prepare("SELECT * FROM jobs WHERE id = ?").get(id);
    return row === undefined ? undefined : jobFromRow(row);
  }

  async list(
    filter: { state?: JobState; kind?: JobKind; studyInstanceUID?: string } = {},
    limit = 100,
  ): Promise<Job[]> {
    const rows = this.db
      .prepare(
        "SELECT * FROM jobs WHERE (@state IS NULL OR state = @state) AND (@kind IS NULL OR kind = @kind) AND (@study IS NULL OR study_uid = @study) ORDER BY created_at DESC, rowid DESC LIMIT @limit",
      )
      .all({
        state: filter.state ?? null,
        kind: filter.kind ?? null,
        study: filter.studyInstanceUID ?? null,
        limit,
      });
    return rows.map(jobFromRow);
  }

  /** Jobs changed at or after `since` (epoch ms), newest change first: the dashboard's last-24-hours figures. */
  async updatedSince(since: number, limit = 10_000): Promise<Job[]> {
    const rows = this.db
      .prepare("SELECT * FROM jobs WHERE updated_at >= ? ORDER BY updated_at DESC, rowid DESC LIMIT ?")
      .all(since, limit);
    return rows.map(jobFromRow);
  }

  /** When the newest route job of each source was made (a study first announced), epoch ms. */
  async lastAnnounced(): Promise<Partial<Record<SourceKind, number>>> {
    const rows = this.db
      .prepare("SELECT source, MAX(created_at) AS at FROM jobs WHERE kind = 'route' GROUP BY source")
      .all() as { source: SourceKind; at: number }[];
    return Object.fromEntries(rows.map((r) => [r.source, r.at]));
  }

  async claimNotification(now = Date.now(), notifier?: NotifierName): Promise<Notification | undefined> {
    return this.outbox.claim(now, notifier);
  }

  async finishNotification(
    claimed: Pick<Notification, "id" | "attempts">,
    outcome: NotificationOutcome,
  ): Promise<void> {
    this.outbox.finish(claimed, outcome, Date.now());
  }

  async notifications(jobId: string): Promise<Notification[]> {
    return this.outbox.forJob(jobId);
  }

  async listPage(
    filter: { state?: JobState; kind?: JobKind; studyInstanceUID?: string },
    limit: number,
    after?: { createdAt: number; id: string },
  ): Promise<Job[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM jobs WHERE (@state IS NULL OR state = @state) AND (@kind IS NULL OR kind = @kind)
         AND (@study IS NULL OR study_uid = @study)
         AND (@afterT IS NULL OR created_at < @afterT OR (created_at = @afterT AND id < @afterId))
         ORDER BY created_at DESC, id DESC LIMIT @limit`,
      )
      .all({
        state: filter.state ?? null,
        kind: filter.kind ?? null,
        study: filter.studyInstanceUID ?? null,
        afterT: after?.createdAt ?? null,
        afterId: after?.id ?? null,
        limit,
      });
    return rows.map(jobFromRow);
  }

  /** Route jobs of `source` queued now (see JobStore.pendingRoutes). */
  async pendingRoutes(source: SourceKind): Promise<number> {
    const row = this.db
      .prepare("SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued' AND kind = 'route' AND source = ?")
      .get(source) as { n: number };
    return row.n;
  }

  /** Route jobs failed with `code` unchanged since before `before` are deleted (see JobStore.deleteFailedRoutes). */
  async deleteFailedRoutes(code: ErrorCode, before: number): Promise<number> {
    return this.db
      .prepare("DELETE FROM jobs WHERE kind = 'route' AND state = 'failed' AND error_code = ? AND updated_at < ?")
      .run(code, before).changes;
  }

  async counts(kind?: JobKind): Promise<Record<JobState, number>> {
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    const rows = this.db
      .prepare("SELECT state, COUNT(*) AS n FROM jobs WHERE @kind IS NULL OR kind = @kind GROUP BY state")
      .all({ kind: kind ?? null }) as { state: JobState; n: number }[];
    for (const r of rows) out[r.state] = r.n;
    return out;
  }
}
