import { z } from "zod";
import { DelineateError, ERROR_CODES, type ErrorCode, type Stage } from "../errors.js";
import type { RuleDecision } from "../route/routeStudy.js";
import { JOB_STATES, type Job, type JobBase } from "./job.js";

/**
 * A jobs table row as both stores hold it (the same column names in SQLite and PostgreSQL), checked with a schema on
 * the way out, so a row another version of Delineate wrote, or a hand edit, fails loudly here instead of as an
 * undefined deep in a job. Numbers are coerced: PostgreSQL hands BIGINT columns back as strings.
 */
const num = z.coerce.number();
const json = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .nullable()
    .transform((s, ctx): z.infer<T> | undefined => {
      if (s === null) return undefined;
      try {
        const parsed = schema.safeParse(JSON.parse(s));
        if (parsed.success) return parsed.data;
        ctx.addIssue({ code: "custom", message: parsed.error.message });
      } catch (err) {
        ctx.addIssue({ code: "custom", message: `not JSON: ${(err as Error).message}` });
      }
      return z.NEVER;
    });

const outputKind = z.enum(["seg", "sr", "rtstruct", "sc"]);
const uids = z.object({ seriesInstanceUID: z.string(), sopInstanceUID: z.string() });
const timings = z.partialRecord(z.enum(["route", "fetch", "volume", "inference", "encode", "store"]), z.number());
// kept loose past the fields the node reads back: the decisions are shown, not acted on
const decision = z.looseObject({
  rule: z.string(),
  models: z.array(z.string()),
  destination: z.string(),
  seriesInstanceUID: z.string().nullable(),
  instanceCount: z.number(),
  skipped: z.array(z.object({ seriesInstanceUID: z.string(), reason: z.string() })),
  reason: z.string().optional(),
});

export const jobRowSchema = z.object({
  id: z.string(),
  kind: z.enum(["route", "segment"]),
  study_uid: z.string(),
  series_uid: z.string(),
  source: z.enum(["pacs", "pushed"]),
  model_id: z.string(),
  model_version: z.string(),
  rule: z.string().nullable(),
  destination: z.string(),
  outputs: json(z.array(outputKind)),
  state: z.enum(JOB_STATES as [Job["state"], ...Job["state"][]]),
  attempts: num,
  not_before: num,
  cancel_requested: z.union([z.boolean(), num]).transform((v) => v === true || v === 1),
  output_uids: json(z.partialRecord(outputKind, uids)),
  execution_provider: z.string().nullable(),
  error_code: z
    .string()
    .refine((c) => c in ERROR_CODES, "unknown error code")
    .nullable(),
  error_stage: z.string().nullable(),
  error_message: z.string().nullable(),
  timings: json(timings),
  routing: json(z.array(decision)),
  warnings: json(z.array(z.string())),
  // added in schema 7 (SQLite), 5 (PostgreSQL); a store without the column reads as nothing superseded
  superseded_uids: json(z.array(z.partialRecord(outputKind, uids))).optional(),
  created_at: num,
  updated_at: num,
  lease_until: num.optional(),
  attempt_log: json(z.array(z.object({ attempt: z.number(), workerId: z.string(), startedAt: z.number() }))).optional(),
});

export type JobRow = z.input<typeof jobRowSchema>;

/** The job a stored row describes. @throws DelineateError DLN_ERR_INTERNAL when the row is not one Delineate wrote. */
export function jobFromRow(raw: unknown): Job {
  const parsed = jobRowSchema.safeParse(raw);
  if (!parsed.success) {
    const id = (raw as { id?: unknown } | null)?.id;
    throw new DelineateError(
      "DLN_ERR_INTERNAL",
      `stored job ${String(id)} is not a job this version of Delineate reads: ${z.prettifyError(parsed.error)}`,
      {},
      { cause: parsed.error },
    );
  }
  const r = parsed.data;
  const base: JobBase = {
    id: r.id,
    studyInstanceUID: r.study_uid,
    source: r.source,
    state: r.state,
    attempts: r.attempts,
    notBefore: r.not_before,
    cancelRequested: r.cancel_requested,
    ...(r.error_code
      ? {
          error: {
            code: r.error_code as ErrorCode,
            stage: (r.error_stage ?? ERROR_CODES[r.error_code as ErrorCode].stage) as Stage,
            message: r.error_message ?? "",
          },
        }
      : {}),
    ...(r.timings ? { timings: r.timings } : {}),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    ...(r.state === "running" && r.lease_until ? { leaseUntil: r.lease_until } : {}),
    ...(r.attempt_log ? { attemptLog: r.attempt_log } : {}),
  };
  if (r.kind === "route") {
    return { ...base, kind: "route", ...(r.routing ? { routing: r.routing as RuleDecision[] } : {}) };
  }
  return {
    ...base,
    kind: "segment",
    segment: {
      seriesInstanceUID: r.series_uid,
      modelId: r.model_id,
      modelVersion: r.model_version,
      rule: r.rule ?? "",
      destination: r.destination,
      outputs: r.outputs ?? ["seg"],
      uids: r.output_uids ?? {},
      ...(r.execution_provider ? { executionProvider: r.execution_provider } : {}),
      ...(r.superseded_uids?.length ? { superseded: r.superseded_uids } : {}),
    },
    ...(r.warnings ? { warnings: r.warnings } : {}),
  };
}
