import type { AuditLog } from "./dashboard/audit.js";
import type { DashboardStore } from "./dashboard/jobReader.js";

/** Who asked: the API (bearer token) or a dashboard session. Recorded in the audit trail, never a person's name. */
export type Actor = "api" | "dashboard";

export interface JobActionDeps {
  store: Pick<DashboardStore, "get" | "retry" | "cancel">;
  /** called after a job is queued again (wakes the worker) */
  onRetry?: () => void;
  audit?: AuditLog;
}

/** An HTTP answer: status and JSON body (a refusal is `{ code, message }`, like every error the API gives). */
export interface ActionOutcome {
  status: number;
  body: unknown;
}

/** The answer to an action on a job that does not exist (docs/errors.md). */
export const NO_SUCH_JOB = { code: "DLN_ERR_REQUEST_INVALID", message: "no such job" } as const;

/**
 * POST /api/jobs/:id/retry and the dashboard's retry button: one code path, so the two cannot drift apart.
 * Failed, dead, skipped or cancelled jobs are queued again; anything else is a 409.
 */
export async function retryJob(deps: JobActionDeps, id: string, actor: Actor): Promise<ActionOutcome> {
  const ok = await deps.store.retry(id);
  if (ok === undefined) return { status: 404, body: NO_SUCH_JOB };
  if (!ok)
    return {
      status: 409,
      body: {
        code: "DLN_ERR_REQUEST_INVALID",
        message: `only failed, dead, skipped or cancelled jobs can be retried; this one is ${(await deps.store.get(id))?.state}`,
      },
    };
  deps.audit?.record(id, "retried", actor);
  deps.onRetry?.();
  return { status: 200, body: await deps.store.get(id) };
}

/** POST /api/jobs/:id/cancel and the dashboard's cancel button: a queued job at once (200), a running one at its next stage (202). */
export async function cancelJob(deps: JobActionDeps, id: string, actor: Actor): Promise<ActionOutcome> {
  const outcome = await deps.store.cancel(id);
  if (outcome === undefined) return { status: 404, body: NO_SUCH_JOB };
  if (outcome === "final")
    return {
      status: 409,
      body: { code: "DLN_ERR_REQUEST_INVALID", message: `the job is already ${(await deps.store.get(id))?.state}` },
    };
  deps.audit?.record(id, outcome === "cancelled" ? "cancelled" : "cancel requested", actor);
  return { status: outcome === "cancelled" ? 200 : 202, body: await deps.store.get(id) };
}
