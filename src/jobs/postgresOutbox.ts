import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { Notification, NotificationOutcome, NotifierName, OutboxEntry } from "../notify/outbox.js";
import { notificationFromRow, notificationLeaseLost } from "./sqliteOutbox.js";

/**
 * PostgreSQL migration 4: the notification outbox, the SQLite store's columns plus a claim lease. In a cluster a
 * `sending` row may be another live node's send in progress, so start-up cannot put it back as the embedded store
 * does: the claim holds it until `claimed_until`, after which any node's claim takes it over (its sender died or
 * froze), and the attempt number fences the outcome, as for jobs.
 */
export const PG_OUTBOX_TABLE = `
  CREATE TABLE notifications (
    seq BIGSERIAL UNIQUE,
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    notifier TEXT NOT NULL,
    result_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before DOUBLE PRECISION NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    sent_at BIGINT,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    claimed_by TEXT,
    UNIQUE (job_id, notifier, result_key)
  );
  CREATE INDEX notifications_due ON notifications (state, not_before, created_at);
  CREATE INDEX notifications_by_job ON notifications (job_id);`;

/** A connection or a transaction's client. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
}

/** Writes a job's outbox rows inside the caller's transaction; one already there for (job, notifier, result) stays. */
export async function addNotifications(
  c: Queryable,
  jobId: string,
  entries: readonly OutboxEntry[],
  now: number,
): Promise<void> {
  for (const e of entries)
    await c.query(
      `INSERT INTO notifications (id, job_id, notifier, result_key, payload, state, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) ON CONFLICT (job_id, notifier, result_key) DO NOTHING`,
      [randomUUID(), jobId, e.notifier, e.resultKey, JSON.stringify(e.payload), now],
    );
}

/**
 * Takes the oldest due pending row, or a sending one whose claim lease ran out, for `workerId` until `now + leaseMs`
 * (attempts + 1: the fencing token); SKIP LOCKED, so concurrent senders never get the same row.
 */
export async function claimNotification(
  c: Queryable,
  now: number,
  notifier: NotifierName | undefined,
  workerId: string,
  leaseMs: number,
): Promise<Notification | undefined> {
  const r = await c.query(
    `WITH next AS (
       SELECT id FROM notifications
       WHERE ((state = 'pending' AND not_before <= $1) OR (state = 'sending' AND claimed_until < $1))
         AND ($2::text IS NULL OR notifier = $2)
       ORDER BY created_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
     UPDATE notifications n SET state = 'sending', attempts = n.attempts + 1, claimed_until = $3, claimed_by = $4,
       updated_at = $1
     FROM next WHERE n.id = next.id RETURNING n.*`,
    [now, notifier ?? null, now + leaseMs, workerId],
  );
  return r.rows[0] ? notificationFromRow(r.rows[0]) : undefined;
}

/** Records one attempt's outcome, only while that attempt still holds the row. @throws DelineateError DLN_ERR_LEASE_LOST */
export async function finishNotification(
  c: Queryable,
  claimed: Pick<Notification, "id" | "attempts">,
  outcome: NotificationOutcome,
  now: number,
): Promise<void> {
  const fence = "id = $1 AND attempts = $2 AND state = 'sending'";
  const r =
    outcome.state === "sent"
      ? await c.query(
          `UPDATE notifications SET state = 'sent', sent_at = $3, error_code = NULL, error_message = NULL,
             claimed_until = 0, updated_at = $3 WHERE ${fence}`,
          [claimed.id, claimed.attempts, now],
        )
      : await c.query(
          `UPDATE notifications SET state = $3, not_before = $4, error_code = $5, error_message = $6, claimed_until = 0,
             updated_at = $7 WHERE ${fence}`,
          [
            claimed.id,
            claimed.attempts,
            outcome.state,
            outcome.state === "pending" ? outcome.retryAt : 0,
            outcome.error.code,
            outcome.error.message,
            now,
          ],
        );
  if (r.rowCount !== 1) throw notificationLeaseLost(claimed);
}

/** A job's notifications, oldest first. */
export async function jobNotifications(c: Queryable, jobId: string): Promise<Notification[]> {
  const r = await c.query("SELECT * FROM notifications WHERE job_id = $1 ORDER BY created_at, seq", [jobId]);
  return r.rows.map(notificationFromRow);
}
