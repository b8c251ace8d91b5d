import { randomUUID } from "node:crypto";
import pg from "pg";
import { DelineateError, type ErrorCode } from "../errors.js";
import type { Logger } from "../log.js";
import type { Notification, NotificationOutcome, NotifierName } from "../notify/outbox.js";
import type { SourceKind } from "../pacs/source.js";
import type { OutputKind } from "../route/rules.js";
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
import {
  addNotifications,
  claimNotification,
  finishNotification,
  jobNotifications,
  PG_OUTBOX_TABLE,
  type Queryable,
} from "./postgresOutbox.js";

/**
 * Versioned schema: each entry takes the schema from the version before it, applied in order in one transaction
 * under an advisory lock, so nodes starting together do not race; `delineate_schema` records what was applied.
 * The jobs table has the SQLite store's columns (the same row schema reads both), plus `seq` for a stable order.
 */
export const PG_MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE jobs (
        seq BIGSERIAL UNIQUE,
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
        not_before DOUBLE PRECISION NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        output_uids TEXT,
        execution_provider TEXT,
        error_code TEXT,
        error_stage TEXT,
        error_message TEXT,
        timings TEXT,
        routing TEXT,
        warnings TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        lease_until BIGINT NOT NULL DEFAULT 0,
        attempt_log TEXT,
        UNIQUE (kind, study_uid, series_uid, model_id, model_version, destination)
      );
      CREATE INDEX jobs_claimable ON jobs (created_at, seq) WHERE state IN ('queued', 'running');
      CREATE INDEX jobs_by_study ON jobs (study_uid);
      CREATE INDEX jobs_by_state ON jobs (state, kind);
      CREATE TABLE cursors (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
      CREATE TABLE pushed_studies (study_uid TEXT PRIMARY KEY, last_received_at BIGINT NOT NULL, queued INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE polled_studies (
        study_uid TEXT PRIMARY KEY, instances INTEGER NOT NULL, changed_at BIGINT NOT NULL, queued INTEGER NOT NULL DEFAULT 0
      );`,
  },
  {
    version: 2,
    sql: `
      ALTER TABLE jobs ADD COLUMN takeovers INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE nodes (worker_id TEXT PRIMARY KEY, roles TEXT NOT NULL, models TEXT NOT NULL, last_seen BIGINT NOT NULL);`,
  },
  {
    // the dashboard's figures: jobs changed in the last day, and each source's newest announcement
    version: 3,
    sql: `
      CREATE INDEX jobs_by_update ON jobs (updated_at);
      CREATE INDEX jobs_announced ON jobs (source, created_at) WHERE kind = 'route';`,
  },
  // the notification outbox, with a claim lease for sends in progress on other nodes
  { version: 4, sql: PG_OUTBOX_TABLE },
  {
    // STOW-RS overwrite (the series a route job redoes, the results they supersede) and the API's keyset pages
    version: 5,
    sql: `
      ALTER TABLE jobs ADD COLUMN superseded_uids TEXT;
      CREATE TABLE pushed_replaced (
        study_uid TEXT NOT NULL, series_uid TEXT NOT NULL, noted_at BIGINT NOT NULL, PRIMARY KEY (study_uid, series_uid)
      );
      CREATE INDEX jobs_page ON jobs (created_at DESC, id DESC);`,
  },
];

/** Advisory lock key under which migrations run (any constant both nodes agree on). */
const MIGRATION_LOCK = 0x64_6c_6e_01;
const FENCE = "id = $1 AND attempts = $2 AND state = 'running'";
const CANCEL_EXPIRED = `UPDATE jobs SET state = 'cancelled', error_code = 'DLN_ERR_CANCELLED', error_stage = 'jobs',
  error_message = 'cancelled through the API', updated_at = $1 WHERE state = 'running' AND cancel_requested = 1`;
const ENQUEUE = `INSERT INTO jobs (id, kind, study_uid, source, state, created_at, updated_at) VALUES ($1, 'route', $2, $3, 'queued', $4, $4)
  ON CONFLICT (kind, study_uid, series_uid, model_id, model_version, destination) DO UPDATE
    SET state = 'queued', source = CASE WHEN jobs.source = 'pushed' THEN 'pushed' ELSE excluded.source END, attempts = 0, not_before = 0, error_code = NULL, error_stage = NULL,
        error_message = NULL, updated_at = excluded.updated_at
    WHERE jobs.state IN ('done', 'skipped')`;

/** The key of a segment job ($1..$5: study, series, model, model version, destination). */
const SEGMENT_KEY = `kind = 'segment' AND study_uid = $1 AND series_uid = $2 AND model_id = $3 AND model_version = $4
  AND destination = $5`;
const REQUEUE = `state = 'queued', attempts = 0, not_before = 0, cancel_requested = 0, error_code = NULL,
  error_stage = NULL, error_message = NULL`;

type Client = pg.PoolClient;

/**
 * The shared job store: PostgreSQL, for several nodes and workers. Claims are our own `FOR UPDATE SKIP LOCKED`
 * rather than a queue library (pg-boss): the promises the node keeps need the job's state, the segment jobs a route
 * job makes, the ingest cursor and the QIDO/STOW bookkeeping to change in one transaction with our own rows, and
 * the fencing token (the attempt number) checked on every write; a queue library keeps its own tables and
 * transactions, so each of those would become two writes with a crash between them. SKIP LOCKED lets any number
 * of workers claim at once without waiting on each other's row locks.
 */
export class PostgresJobStore implements JobStore {
  /** per lead name: the connection holding its session advisory lock (the lock goes when the connection does) */
  private readonly leads = new Map<string, pg.Client>();

  private constructor(
    private readonly pool: pg.Pool,
    private readonly newUid: () => string,
    private readonly worker: WorkerIdentity,
  ) {}

  /** Connects and brings the schema up to date. @throws DelineateError DLN_ERR_CONFIG_INVALID when unreachable. */
  static async open(
    url: string,
    newUid: () => string,
    worker: WorkerIdentity,
    log?: Logger,
  ): Promise<PostgresJobStore> {
    const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 10_000 });
    // an idle connection dropped by a PostgreSQL restart must not stop the node: the next query reconnects
    pool.on("error", (err) => log?.warn("job store connection lost; reconnecting on next use", { error: err.message }));
    const store = new PostgresJobStore(pool, newUid, worker);
    try {
      await store.migrate();
    } catch (err) {
      await pool.end().catch(() => {});
      throw new DelineateError(
        "DLN_ERR_CONFIG_INVALID",
        `cannot open the PostgreSQL job store ${redact(url)}: ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
    return store;
  }

  /** The schema version applied (0: none). */
  async schemaVersion(): Promise<number> {
    const r = await this.q("SELECT COALESCE(MAX(version), 0) AS v FROM delineate_schema");
    return Number(r.rows[0]?.v ?? 0);
  }

  private async migrate(): Promise<void> {
    await this.tx(async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
      await c.query(
        "CREATE TABLE IF NOT EXISTS delineate_schema (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
      );
      const r = await c.query("SELECT COALESCE(MAX(version), 0) AS v FROM delineate_schema");
      const current = Number(r.rows[0]?.v ?? 0);
      const latest = PG_MIGRATIONS.at(-1)?.version ?? 0;
      if (current > latest)
        throw new DelineateError(
          "DLN_ERR_CONFIG_INVALID",
          `its schema is version ${current}, newer than this Delineate's ${latest}: upgrade Delineate`,
        );
      for (const m of PG_MIGRATIONS) {
        if (m.version <= current) continue;
        await c.query(m.sql);
        await c.query("INSERT INTO delineate_schema (version, applied_at) VALUES ($1, $2)", [m.version, Date.now()]);
      }
    });
  }

  /** One statement on a pooled connection. @throws DelineateError (DLN_ERR_STORE_UNAVAILABLE when transient). */
  private async q(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
    try {
      return await this.pool.query(sql, params);
    } catch (err) {
      throw storeError(err);
    }
  }

  /** One transaction on one connection; rolled back on any error. @throws DelineateError */
  private async tx<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    let c: Client;
    try {
      c = await this.pool.connect();
    } catch (err) {
      throw storeError(err);
    }
    try {
      await c.query("BEGIN");
      const out = await fn(c);
      await c.query("COMMIT");
      return out;
    } catch (err) {
      await c.query("ROLLBACK").catch(() => {});
      throw storeError(err);
    } finally {
      c.release();
    }
  }

  /**
   * Adds another store's rows in one transaction (`delineate store migrate`); rows already here (same job id, same
   * idempotency key, same cursor or study) are kept, so running it twice changes nothing. Returns rows added per table.
   */
  async importRows(rows: StoreRows): Promise<Record<keyof StoreRows, number>> {
    const KEYS: Record<keyof StoreRows, string> = {
      jobs: "",
      cursors: "(name)",
      pushed_studies: "(study_uid)",
      pushed_replaced: "(study_uid, series_uid)",
      polled_studies: "(study_uid)",
    };
    return this.tx(async (c) => {
      const added = { jobs: 0, cursors: 0, pushed_studies: 0, pushed_replaced: 0, polled_studies: 0 };
      for (const table of Object.keys(KEYS) as (keyof StoreRows)[]) {
        for (const row of rows[table]) {
          const cols = Object.keys(row);
          const r = await c.query(
            `INSERT INTO ${table} (${cols.join(", ")}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})
             ON CONFLICT ${KEYS[table]} DO NOTHING`,
            cols.map((k) => row[k]),
          );
          added[table] += r.rowCount ?? 0;
        }
      }
      return added;
    });
  }

  async tryLead(name: string): Promise<boolean> {
    const held = this.leads.get(name);
    if (held) {
      try {
        await held.query("SELECT 1");
        return true;
      } catch {
        this.leads.delete(name); // the connection died, and the lock with it: try again below
        await held.end().catch(() => {});
      }
    }
    const client = new pg.Client(this.pool.options);
    client.on("error", () => {}); // noticed by the next check above
    try {
      await client.connect();
      const r = await client.query("SELECT pg_try_advisory_lock(hashtext($1)) AS ok", [`delineate:${name}`]);
      if (r.rows[0]?.ok === true) {
        this.leads.set(name, client);
        return true;
      }
    } catch {
      // unreachable store: not the leader now; asked again at the next poll
    }
    await client.end().catch(() => {});
    return false;
  }

  async close(): Promise<void> {
    for (const c of this.leads.values()) await c.end().catch(() => {});
    this.leads.clear();
    await this.pool.end();
  }

  async cursor(name: string): Promise<number | undefined> {
    const r = await this.q("SELECT value FROM cursors WHERE name = $1", [name]);
    return r.rows[0] ? Number(r.rows[0].value) : undefined;
  }

  async enqueue(
    studyUIDs: readonly string[],
    cursor?: { name: string; value: number },
    source: SourceKind = "pacs",
  ): Promise<number> {
    return this.tx((c) => this.enqueueIn(c, studyUIDs, cursor, source));
  }

  private async enqueueIn(
    c: Client,
    studyUIDs: readonly string[],
    cursor?: { name: string; value: number },
    source: SourceKind = "pacs",
  ): Promise<number> {
    const now = Date.now();
    let added = 0;
    for (const uid of studyUIDs) added += (await c.query(ENQUEUE, [randomUUID(), uid, source, now])).rowCount ?? 0;
    if (cursor)
      await c.query(
        "INSERT INTO cursors (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [cursor.name, cursor.value],
      );
    return added;
  }

  async observeStudy(studyUID: string, instances: number, now: number, quietMs: number): Promise<boolean> {
    return this.tx(async (c) => {
      const r = await c.query(
        "SELECT instances, changed_at, queued FROM polled_studies WHERE study_uid = $1 FOR UPDATE",
        [studyUID],
      );
      const row = r.rows[0] as { instances: number; changed_at: string; queued: number } | undefined;
      if (!row || row.instances !== instances) {
        await c.query(
          `INSERT INTO polled_studies (study_uid, instances, changed_at) VALUES ($1, $2, $3)
           ON CONFLICT (study_uid) DO UPDATE SET instances = excluded.instances, changed_at = excluded.changed_at, queued = 0`,
          [studyUID, instances, now],
        );
        return false;
      }
      if (row.queued || now - Number(row.changed_at) < quietMs) return false;
      await c.query("UPDATE polled_studies SET queued = 1 WHERE study_uid = $1", [studyUID]);
      return (await this.enqueueIn(c, [studyUID])) > 0;
    });
  }

  /**
   * STOW-RS: the study's quiet period starts again, and the series that had an instance replaced are marked for the
   * next route job to redo, in one transaction.
   */
  async notePushed(studyUID: string, now: number, replacedSeries: readonly string[] = []): Promise<void> {
    await this.tx(async (c) => {
      await c.query(
        `INSERT INTO pushed_studies (study_uid, last_received_at) VALUES ($1, $2)
         ON CONFLICT (study_uid) DO UPDATE SET last_received_at = excluded.last_received_at, queued = 0`,
        [studyUID, now],
      );
      if (replacedSeries.length)
        await c.query(
          `INSERT INTO pushed_replaced (study_uid, series_uid, noted_at) SELECT $1, s, $3 FROM unnest($2::text[]) AS s
           ON CONFLICT (study_uid, series_uid) DO UPDATE SET noted_at = excluded.noted_at`,
          [studyUID, [...new Set(replacedSeries)], now],
        );
    });
  }

  async queueQuietPushed(now: number, quietMs: number): Promise<string[]> {
    return this.tx(async (c) => {
      const r = await c.query(
        "UPDATE pushed_studies SET queued = 1 WHERE queued = 0 AND last_received_at <= $1 RETURNING study_uid",
        [now - quietMs],
      );
      const due = r.rows.map((row: { study_uid: string }) => row.study_uid).sort();
      if (due.length) await this.enqueueIn(c, due, undefined, "pushed");
      return due;
    });
  }

  /**
   * Running jobs, and sending notifications, may belong to other nodes' live workers: lease expiry, not start-up,
   * puts them back (the next claim takes over one whose lease ran out).
   */
  async recoverInterrupted(): Promise<number> {
    return 0;
  }

  /** Statements on the pool, errors as DelineateError. */
  private get pooled(): Queryable {
    return { query: (sql, params) => this.q(sql, params) };
  }

  async claimNotification(now = Date.now(), notifier?: NotifierName): Promise<Notification | undefined> {
    return claimNotification(this.pooled, now, notifier, this.worker.workerId, this.worker.leaseMs);
  }

  async finishNotification(
    claimed: Pick<Notification, "id" | "attempts">,
    outcome: NotificationOutcome,
  ): Promise<void> {
    await finishNotification(this.pooled, claimed, outcome, Date.now());
  }

  async notifications(jobId: string): Promise<Notification[]> {
    return jobNotifications(this.pooled, jobId);
  }

  async claimNext(now = Date.now()): Promise<Job | undefined> {
    return this.tx(async (c) => {
      await c.query(`${CANCEL_EXPIRED} AND lease_until < $1`, [now]);
      const r = await c.query(
        `WITH next AS (
           SELECT id FROM jobs
           WHERE ((state = 'queued' AND not_before <= $1) OR (state = 'running' AND lease_until < $1))
             AND ($4::text[] IS NULL OR kind = 'route' OR model_id = ANY($4::text[]))
           ORDER BY created_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
         UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, lease_until = $2, updated_at = $1,
           takeovers = j.takeovers + (CASE WHEN j.state = 'running' THEN 1 ELSE 0 END),
           attempt_log = (COALESCE(j.attempt_log, '[]')::jsonb || jsonb_build_array(jsonb_build_object(
             'attempt', j.attempts + 1, 'workerId', $3::text, 'startedAt', $1::bigint)))::text
         FROM next WHERE j.id = next.id RETURNING j.*`,
        [now, now + this.worker.leaseMs, this.worker.workerId, this.worker.models ?? null],
      );
      return r.rows[0] ? jobFromRow(r.rows[0]) : undefined;
    });
  }

  async beat(node: NodeBeat, now = Date.now()): Promise<void> {
    await this.q(
      `INSERT INTO nodes (worker_id, roles, models, last_seen) VALUES ($1, $2, $3, $4)
       ON CONFLICT (worker_id) DO UPDATE SET roles = excluded.roles, models = excluded.models, last_seen = excluded.last_seen`,
      [node.workerId, JSON.stringify(node.roles), JSON.stringify(node.models), now],
    );
  }

  async cluster(now = Date.now()): Promise<ClusterStatus> {
    const [nodes, queued, figures] = await Promise.all([
      this.q("SELECT * FROM nodes ORDER BY worker_id"),
      this.q(
        "SELECT CASE kind WHEN 'route' THEN 'route' ELSE model_id END AS k, COUNT(*) AS n FROM jobs WHERE state = 'queued' GROUP BY k",
      ),
      this.q(
        `SELECT COUNT(*) FILTER (WHERE state = 'running' AND lease_until < $1) AS expired,
           COALESCE(SUM(takeovers), 0) AS takeovers FROM jobs`,
        [now],
      ),
    ]);
    return {
      nodes: nodes.rows.map((n: { worker_id: string; roles: string; models: string; last_seen: string }) => ({
        workerId: n.worker_id,
        roles: JSON.parse(n.roles) as string[],
        models: JSON.parse(n.models) as string[],
        lastSeen: Number(n.last_seen),
      })),
      queued: Object.fromEntries(queued.rows.map((r: { k: string; n: string }) => [r.k, Number(r.n)])),
      leasesExpired: Number(figures.rows[0]?.expired ?? 0),
      takenOver: Number(figures.rows[0]?.takeovers ?? 0),
    };
  }

  async heartbeat(job: Job): Promise<boolean> {
    const r = await this.q(`UPDATE jobs SET lease_until = $3 WHERE ${FENCE}`, [
      job.id,
      job.attempts,
      Date.now() + this.worker.leaseMs,
    ]);
    return r.rowCount === 1;
  }

  /** A transaction that writes only while `job` still holds its attempt (the row is locked for the rest of it). */
  private fenced<T>(job: Job, write: (c: Client) => Promise<T>): Promise<T> {
    return this.tx(async (c) => {
      const r = await c.query(`SELECT 1 FROM jobs WHERE ${FENCE} FOR UPDATE`, [job.id, job.attempts]);
      if (!r.rowCount) throw leaseLost(job);
      return write(c);
    });
  }

  async complete(job: Job, result: JobResult): Promise<number> {
    return this.fenced(job, async (c) => {
      const now = Date.now();
      if (result.kind === "segment") {
        await c.query(
          `UPDATE jobs SET state = 'done', execution_provider = $2, timings = $3, warnings = $4, error_code = NULL,
             error_stage = NULL, error_message = NULL, updated_at = $5 WHERE id = $1`,
          [
            job.id,
            result.executionProvider,
            JSON.stringify(result.timings),
            result.warnings.length ? JSON.stringify(result.warnings) : null,
            now,
          ],
        );
        // the outbox, in this transaction: a result recorded done always has its notifications
        if (result.notifications?.length) await addNotifications(c, job.id, result.notifications, now);
        return 0;
      }
      await c.query(
        `UPDATE jobs SET state = 'done', timings = $2, routing = $3, error_code = NULL, error_stage = NULL,
           error_message = NULL, updated_at = $4 WHERE id = $1`,
        [job.id, JSON.stringify(result.timings), JSON.stringify(result.decisions), now],
      );
      const replaced = await this.takeReplaced(c, job);
      let added = 0;
      for (const t of result.jobs) {
        const uids = this.outputUids(t.outputs);
        if (replaced.has(t.seriesInstanceUID)) added += await this.redo(c, job.studyInstanceUID, t, uids, now);
        const r = await c.query(
          `INSERT INTO jobs (id, kind, study_uid, series_uid, source, model_id, model_version, rule, destination, outputs,
             state, output_uids, created_at, updated_at)
           VALUES ($1, 'segment', $2, $3, $4, $5, $6, $7, $8, $9, 'queued', $10, $11, $11) ON CONFLICT DO NOTHING`,
          [
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
          ],
        );
        added += r.rowCount ?? 0;
      }
      return added;
    });
  }

  private outputUids(outputs: readonly OutputKind[]): Record<string, OutputUids> {
    return Object.fromEntries(
      outputs.map((kind) => [kind, { seriesInstanceUID: this.newUid(), sopInstanceUID: this.newUid() }]),
    );
  }

  /**
   * The series of a route job's study replaced (STOW-RS overwrite) before the job was claimed, their marks taken in
   * the route job's transaction: deleted and read in one statement, so a mark another node notes meanwhile is either
   * taken here or left for the next route, and a rolled-back completion leaves them all.
   */
  private async takeReplaced(c: Client, job: Job): Promise<Set<string>> {
    const r = await c.query(
      "DELETE FROM pushed_replaced WHERE study_uid = $1 AND noted_at <= $2 RETURNING series_uid",
      [job.studyInstanceUID, job.updatedAt],
    );
    return new Set(r.rows.map((row: { series_uid: string }) => row.series_uid));
  }

  /**
   * Queues an existing segment job again because its series changed: a done one with new output UIDs (`uids`), its
   * old ones appended to superseded_uids; a failed or dead one with its UIDs kept; any other left as it is. Returns 1
   * when it was queued.
   */
  private async redo(
    c: Client,
    study: string,
    t: SegmentTarget,
    uids: Record<string, OutputUids>,
    now: number,
  ): Promise<number> {
    const key = [study, t.seriesInstanceUID, t.modelId, t.modelVersion, t.destination];
    const done = await c.query(
      `UPDATE jobs SET ${REQUEUE}, updated_at = $6, output_uids = $7,
         superseded_uids = (COALESCE(superseded_uids, '[]')::jsonb || jsonb_build_array(output_uids::jsonb))::text
       WHERE ${SEGMENT_KEY} AND state = 'done'`,
      [...key, now, JSON.stringify(uids)],
    );
    if (done.rowCount) return done.rowCount;
    const ended = await c.query(
      `UPDATE jobs SET ${REQUEUE}, updated_at = $6 WHERE ${SEGMENT_KEY} AND state IN ('failed', 'dead')`,
      [...key, now],
    );
    return ended.rowCount ?? 0;
  }

  async finishWithError(job: Job, state: ErrorState, err: DelineateError, retryAt = 0): Promise<void> {
    const r = await this.q(
      `UPDATE jobs SET state = $3, error_code = $4, error_stage = $5, error_message = $6, not_before = $7, updated_at = $8
       WHERE ${FENCE}`,
      [job.id, job.attempts, state, err.code, err.stage, err.message, retryAt, Date.now()],
    );
    if (r.rowCount !== 1) throw leaseLost(job);
  }

  async cancel(id: string): Promise<"cancelled" | "requested" | "final" | undefined> {
    return this.tx(async (c) => {
      const r = await c.query("SELECT state FROM jobs WHERE id = $1 FOR UPDATE", [id]);
      const state = r.rows[0]?.state as JobState | undefined;
      if (!state) return undefined;
      const now = Date.now();
      if (state === "queued") {
        await c.query(
          `UPDATE jobs SET state = 'cancelled', error_code = 'DLN_ERR_CANCELLED', error_stage = 'jobs',
             error_message = 'cancelled through the API before it ran', updated_at = $2 WHERE id = $1`,
          [id, now],
        );
        return "cancelled";
      }
      if (state === "running") {
        await c.query("UPDATE jobs SET cancel_requested = 1, updated_at = $2 WHERE id = $1", [id, now]);
        return "requested";
      }
      return "final";
    });
  }

  async cancelRequested(job: Job): Promise<boolean> {
    const r = await this.q(`SELECT cancel_requested FROM jobs WHERE ${FENCE}`, [job.id, job.attempts]);
    if (!r.rows[0]) throw leaseLost(job);
    return r.rows[0].cancel_requested === 1;
  }

  async retry(id: string): Promise<boolean | undefined> {
    const r = await this.q(
      `UPDATE jobs SET state = 'queued', attempts = 0, not_before = 0, cancel_requested = 0, error_code = NULL,
         error_stage = NULL, error_message = NULL, updated_at = $2
       WHERE id = $1 AND state IN ('failed', 'dead', 'skipped', 'cancelled')`,
      [id, Date.now()],
    );
    if (r.rowCount === 1) return true;
    return (await this.get(id)) ? false : undefined;
  }

  async get(id: string): Promise<Job | undefined> {
    const r = await this.q("SELECT * FROM jobs WHERE id = $1", [id]);
    return r.rows[0] ? jobFromRow(r.rows[0]) : undefined;
  }

  async list(
    filter: { state?: JobState; kind?: JobKind; studyInstanceUID?: string } = {},
    limit = 100,
  ): Promise<Job[]> {
    const r = await this.q(
      `SELECT * FROM jobs WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR kind = $2)
         AND ($3::text IS NULL OR study_uid = $3) ORDER BY created_at DESC, seq DESC LIMIT $4`,
      [filter.state ?? null, filter.kind ?? null, filter.studyInstanceUID ?? null, limit],
    );
    return r.rows.map(jobFromRow);
  }

  async listPage(
    filter: { state?: JobState; kind?: JobKind; studyInstanceUID?: string },
    limit: number,
    after?: { createdAt: number; id: string },
  ): Promise<Job[]> {
    // a keyset on (created_at, id), the cursor the API hands out; the same order as the SQLite store's
    const r = await this.q(
      `SELECT * FROM jobs WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR kind = $2)
         AND ($3::text IS NULL OR study_uid = $3)
         AND ($4::bigint IS NULL OR (created_at, id) < ($4::bigint, $5::text))
       ORDER BY created_at DESC, id DESC LIMIT $6`,
      [
        filter.state ?? null,
        filter.kind ?? null,
        filter.studyInstanceUID ?? null,
        after?.createdAt ?? null,
        after?.id ?? null,
        limit,
      ],
    );
    return r.rows.map(jobFromRow);
  }

  /** Route jobs of `source` queued now (see JobStore.pendingRoutes). */
  async pendingRoutes(source: SourceKind): Promise<number> {
    const r = await this.q("SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued' AND kind = 'route' AND source = $1", [
      source,
    ]);
    return Number(r.rows[0]?.n ?? 0);
  }

  /** Route jobs failed with `code` unchanged since before `before` are deleted (see JobStore.deleteFailedRoutes). */
  async deleteFailedRoutes(code: ErrorCode, before: number): Promise<number> {
    const r = await this.q(
      "DELETE FROM jobs WHERE kind = 'route' AND state = 'failed' AND error_code = $1 AND updated_at < $2",
      [code, before],
    );
    return r.rowCount ?? 0;
  }

  /** Jobs changed at or after `since` (epoch ms), newest change first: the dashboard's last-24-hours figures. */
  async updatedSince(since: number, limit = 10_000): Promise<Job[]> {
    const r = await this.q("SELECT * FROM jobs WHERE updated_at >= $1 ORDER BY updated_at DESC, seq DESC LIMIT $2", [
      since,
      limit,
    ]);
    return r.rows.map(jobFromRow);
  }

  /** When the newest route job of each source was made (a study first announced), epoch ms. */
  async lastAnnounced(): Promise<Partial<Record<SourceKind, number>>> {
    const r = await this.q("SELECT source, MAX(created_at) AS at FROM jobs WHERE kind = 'route' GROUP BY source");
    return Object.fromEntries(
      (r.rows as { source: SourceKind; at: string }[]).map((row) => [row.source, Number(row.at)]),
    );
  }

  async counts(kind?: JobKind): Promise<Record<JobState, number>> {
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    const r = await this.q("SELECT state, COUNT(*) AS n FROM jobs WHERE $1::text IS NULL OR kind = $1 GROUP BY state", [
      kind ?? null,
    ]);
    for (const row of r.rows as { state: JobState; n: string }[]) out[row.state] = Number(row.n);
    return out;
  }
}

/**
 * A failure of the store as a DelineateError: a dropped or refused connection, a server shutting down or starting,
 * a serialization conflict are transient (DLN_ERR_STORE_UNAVAILABLE, retried); anything else is a bug.
 */
function storeError(err: unknown): DelineateError {
  if (err instanceof DelineateError) return err;
  const code = String((err as { code?: unknown }).code ?? "");
  const message = (err as Error).message ?? String(err);
  const transient =
    /^(08|57P|53)/.test(code) ||
    ["40001", "40P01", "ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND"].includes(code) ||
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
      message,
    );
  return transient
    ? new DelineateError("DLN_ERR_STORE_UNAVAILABLE", `the job store is unreachable: ${message}`, {}, { cause: err })
    : new DelineateError("DLN_ERR_INTERNAL", `job store: ${message}`, {}, { cause: err });
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1:***@");
}
