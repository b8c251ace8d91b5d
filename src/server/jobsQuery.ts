import { isDicomUid } from "../dicom/uids.js";
import { DelineateError } from "../errors.js";
import { JOB_KINDS, JOB_STATES, type Job, type JobKind, type JobState } from "../jobs/job.js";

/** Jobs per page when the request names no `limit`. */
export const DEFAULT_PAGE = 100;
/** The most jobs one page holds: a larger `limit` is refused, not cut. */
export const MAX_PAGE = 500;

export interface JobsQuery {
  filter: { state?: JobState; kind?: JobKind; studyInstanceUID?: string };
  limit: number;
  after?: { createdAt: number; id: string };
}

const PARAMETERS = new Set(["state", "kind", "study", "limit", "cursor"]);

const invalid = (message: string) => new DelineateError("DLN_ERR_REQUEST_INVALID", message);

/**
 * GET /api/jobs's query: `state`, `kind`, `study`, `limit` (1..MAX_PAGE) and `cursor` (from the previous page's
 * Link header), each at most once. Anything else is refused: a misspelt filter silently ignored answers with every
 * job, which reads as a match.
 * @throws DelineateError DLN_ERR_REQUEST_INVALID naming the parameter
 */
export function parseJobsQuery(query: Record<string, unknown>): JobsQuery {
  const one = (name: string): string | undefined => {
    const v = query[name];
    if (v === undefined) return undefined;
    if (typeof v !== "string") throw invalid(`query parameter "${name}" is given more than once`);
    return v;
  };
  for (const name of Object.keys(query))
    if (!PARAMETERS.has(name)) throw invalid(`unknown query parameter (expected ${[...PARAMETERS].join(", ")})`);
  const state = one("state");
  if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state))
    throw invalid(`unknown state (one of ${JOB_STATES.join(", ")})`);
  const kind = one("kind");
  if (kind !== undefined && !(JOB_KINDS as readonly string[]).includes(kind))
    throw invalid("unknown kind (route or segment)");
  const study = one("study");
  if (study !== undefined && !isDicomUid(study))
    throw new DelineateError("DLN_ERR_UID_INVALID", "study is not a valid DICOM UID (PS3.5 §9.1)");
  const limitText = one("limit");
  const limit = limitText === undefined ? DEFAULT_PAGE : Number(limitText);
  if (!/^[0-9]+$/.test(limitText ?? "1") || !Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
    throw invalid(`limit must be an integer from 1 to ${MAX_PAGE}`);
  const cursor = one("cursor");
  return {
    filter: {
      ...(state ? { state: state as JobState } : {}),
      ...(kind ? { kind: kind as JobKind } : {}),
      ...(study ? { studyInstanceUID: study } : {}),
    },
    limit,
    ...(cursor !== undefined ? { after: decodeCursor(cursor) } : {}),
  };
}

/** The cursor of the page after `job` (the last of a page): opaque to clients, base64url of its keyset. */
export function encodeCursor(job: Pick<Job, "createdAt" | "id">): string {
  return Buffer.from(JSON.stringify([job.createdAt, job.id])).toString("base64url");
}

function decodeCursor(cursor: string): { createdAt: number; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown[];
    if (Number.isSafeInteger(createdAt) && typeof id === "string" && id.length <= 200)
      return { createdAt: createdAt as number, id };
  } catch {
    // not JSON: refused below like any other bad cursor
  }
  throw invalid("cursor is not one this node gave");
}
