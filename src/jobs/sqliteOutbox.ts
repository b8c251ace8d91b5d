import { randomUUID } from "node:crypto";
import type Database from "better-sqlite3";
import { z } from "zod";
import { DelineateError, ERROR_CODES, type ErrorCode } from "../errors.js";
import {
  NOTIFIER_NAMES,
  type Notification,
  type NotificationOutcome,
  type NotifierName,
  type OutboxEntry,
  type ResultFacts,
} from "../notify/outbox.js";

/**
 * The notification outbox (schema version 4). A row is written in the transaction that marks its segment job done,
 * so a result stored and recorded is never left without its notifications, and (job, notifier, result) is unique,
 * so completing a job again with the same outputs writes none twice.
 */
export const OUTBOX_TABLE = `
  CREATE TABLE IF NOT EXISTS notifications (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    notifier TEXT NOT NULL,
    result_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    sent_at INTEGER,
    UNIQUE (job_id, notifier, result_key)
  );
  CREATE INDEX IF NOT EXISTS notifications_due ON notifications (state, not_before, created_at);
  CREATE INDEX IF NOT EXISTS notifications_by_job ON notifications (job_id);
`;

const rowSchema = z.object({
  id: z.string(),
  job_id: z.string(),
  notifier: z.enum(NOTIFIER_NAMES as [NotifierName, ...NotifierName[]]),
  result_key: z.string(),
  payload: z.string(),
  state: z.enum(["pending", "sending", "sent", "failed"]),
  attempts: z.coerce.number(),
  not_before: z.coerce.number(),
  error_code: z.string().nullable(),
  error_message: z.string().nullable(),
  created_at: z.coerce.number(),
  updated_at: z.coerce.number(),
  sent_at: z.coerce.number().nullable(),
});

/** A stored row as a Notification (the same columns a PostgreSQL store would have). */
export function notificationFromRow(raw: unknown): Notification {
  const parsed = rowSchema.safeParse(raw);
  if (!parsed.success)
    throw new DelineateError(
      "DLN_ERR_INTERNAL",
      `a stored notification is not one this version of Delineate reads: ${z.prettifyError(parsed.error)}`,
    );
  const r = parsed.data;
  return {
    id: r.id,
    jobId: r.job_id,
    notifier: r.notifier,
    resultKey: r.result_key,
    payload: JSON.parse(r.payload) as ResultFacts,
    state: r.state,
    attempts: r.attempts,
    notBefore: r.not_before,
    ...(r.error_code && r.error_code in ERROR_CODES
      ? { lastError: { code: r.error_code as ErrorCode, message: r.error_message ?? "" } }
      : {}),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    ...(r.sent_at !== null ? { sentAt: r.sent_at } : {}),
  };
}

/** The error a fenced outcome raises: the row is no longer that attempt's (put back, or taken over). */
export function notificationLeaseLost(claimed: Pick<Notification, "id" | "attempts">): DelineateError {
  return new DelineateError(
    "DLN_ERR_LEASE_LOST",
    `notification ${claimed.id} attempt ${claimed.attempts} lost its claim: another sender took it over; this outcome is not recorded`,
  );
}

/** The outbox's statements on the store's connection; `add` runs inside the caller's transaction. */
export class SqliteOutbox {
  constructor(private readonly db: Database.Database) {}

  /** Writes a job's outbox rows; one already there for (job, notifier, result) is left as it is. */
  add(jobId: string, entries: readonly OutboxEntry[], now: number): void {
    const insert = this.db.prepare(
      `INSERT OR IGNORE INTO notifications (id, job_id, notifier, result_key, payload, state, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)`,
    );
    for (const e of entries)
      insert.run(randomUUID(), jobId, e.notifier, e.resultKey, JSON.stringify(e.payload), now, now);
  }

  /** Notifications a crash left sending are due again now (the peer may or may not have had them). */
  recover(now: number): number {
    return this.db
      .prepare("UPDATE notifications SET state = 'pending', not_before = 0, updated_at = ? WHERE state = 'sending'")
      .run(now).changes;
  }

  claim(now: number, notifier?: NotifierName): Notification | undefined {
    return this.db.transaction(() => {
      const row = this.db
        .prepare(
          "SELECT * FROM notifications WHERE state = 'pending' AND not_before <= @now AND (@notifier IS NULL OR notifier = @notifier) ORDER BY created_at, rowid LIMIT 1",
        )
        .get({ now, notifier: notifier ?? null }) as Record<string, unknown> | undefined;
      if (!row) return undefined;
      this.db
        .prepare("UPDATE notifications SET state = 'sending', attempts = attempts + 1, updated_at = ? WHERE id = ?")
        .run(now, row.id);
      return notificationFromRow({ ...row, state: "sending", attempts: Number(row.attempts) + 1, updated_at: now });
    })();
  }

  /** Records an attempt's outcome while that attempt still holds the row. @throws DelineateError DLN_ERR_LEASE_LOST */
  finish(claimed: Pick<Notification, "id" | "attempts">, outcome: NotificationOutcome, now: number): void {
    const fence = "id = ? AND attempts = ? AND state = 'sending'";
    const changes =
      outcome.state === "sent"
        ? this.db
            .prepare(
              `UPDATE notifications SET state = 'sent', sent_at = ?, error_code = NULL, error_message = NULL, updated_at = ? WHERE ${fence}`,
            )
            .run(now, now, claimed.id, claimed.attempts).changes
        : this.db
            .prepare(
              `UPDATE notifications SET state = ?, not_before = ?, error_code = ?, error_message = ?, updated_at = ? WHERE ${fence}`,
            )
            .run(
              outcome.state,
              outcome.state === "pending" ? outcome.retryAt : 0,
              outcome.error.code,
              outcome.error.message,
              now,
              claimed.id,
              claimed.attempts,
            ).changes;
    if (changes !== 1) throw notificationLeaseLost(claimed);
  }

  forJob(jobId: string): Notification[] {
    return this.db
      .prepare("SELECT * FROM notifications WHERE job_id = ? ORDER BY created_at, rowid")
      .all(jobId)
      .map(notificationFromRow);
  }
}
