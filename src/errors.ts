/**
 * The one list of Delineate's error codes. Each says which stage raises it and whether a job that hit it
 * is worth retrying (a PACS that is down, yes; a series that is not a volume, never).
 * docs/errors.md documents the same list; test/unit/errors.test.ts keeps the two in step.
 */
export const ERROR_CODES = {
  DLN_ERR_CONFIG_INVALID: { stage: "config", retryable: false },
  DLN_ERR_MODEL_INVALID: { stage: "models", retryable: false },
  DLN_ERR_PACS_UNAVAILABLE: { stage: "pacs", retryable: true },
  DLN_ERR_PACS_REJECTED: { stage: "pacs", retryable: false },
  DLN_ERR_PACS_MALFORMED: { stage: "pacs", retryable: false },
  DLN_ERR_STOW_INVALID: { stage: "ingest", retryable: false },
  DLN_ERR_STOW_TOO_LARGE: { stage: "ingest", retryable: false },
  DLN_ERR_STOW_FULL: { stage: "ingest", retryable: false },
  DLN_ERR_INGEST_BUSY: { stage: "ingest", retryable: false },
  DLN_ERR_REQUEST_INVALID: { stage: "api", retryable: false },
  DLN_ERR_UNAUTHORIZED: { stage: "api", retryable: false },
  DLN_ERR_UID_INVALID: { stage: "ingest", retryable: false },
  DLN_ERR_DICOM_PARSE: { stage: "fetch", retryable: false },
  DLN_ERR_DICOM_DECODE: { stage: "volume", retryable: false },
  DLN_ERR_NO_SERIES: { stage: "route", retryable: false },
  DLN_ERR_STUDY_NOT_FOUND: { stage: "route", retryable: false },
  DLN_ERR_VOLUME_UNSUPPORTED: { stage: "volume", retryable: false },
  DLN_ERR_VOLUME_TILT: { stage: "volume", retryable: false },
  DLN_ERR_VOLUME_SPACING: { stage: "volume", retryable: false },
  DLN_ERR_VOLUME_TOO_FEW_SLICES: { stage: "volume", retryable: false },
  DLN_ERR_INFERENCE: { stage: "inference", retryable: false },
  DLN_ERR_OUTPUT_INVALID: { stage: "outputs", retryable: false },
  DLN_ERR_LEASE_LOST: { stage: "jobs", retryable: false },
  DLN_ERR_STORE_UNAVAILABLE: { stage: "jobs", retryable: true },
  DLN_ERR_CANCELLED: { stage: "jobs", retryable: false },
  DLN_ERR_INTERNAL: { stage: "jobs", retryable: false },
  DLN_ERR_NOTIFY_UNAVAILABLE: { stage: "notify", retryable: true },
  DLN_ERR_NOTIFY_REJECTED: { stage: "notify", retryable: false },
  DLN_ERR_NOTIFY_INVALID: { stage: "notify", retryable: false },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
export type Stage = (typeof ERROR_CODES)[ErrorCode]["stage"];

/** Every error Delineate raises on purpose: a code from the list, a message a person can act on, context (UIDs, never PHI). */
export class DelineateError extends Error {
  readonly code: ErrorCode;
  readonly stage: Stage;
  readonly retryable: boolean;
  readonly context: Readonly<Record<string, string | number>>;

  constructor(
    code: ErrorCode,
    message: string,
    context: Record<string, string | number> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "DelineateError";
    this.code = code;
    this.stage = ERROR_CODES[code].stage;
    this.retryable = ERROR_CODES[code].retryable;
    this.context = Object.freeze({ ...context });
  }
}

/** Wraps anything thrown into a DelineateError, so a job always records a code and a stage. */
export function asDelineateError(err: unknown): DelineateError {
  if (err instanceof DelineateError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new DelineateError("DLN_ERR_INTERNAL", message, {}, { cause: err });
}
