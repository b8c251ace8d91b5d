import { DelineateError, type ErrorCode } from "../errors.js";

/**
 * A failure as it crosses the inference worker's thread boundary. postMessage clones an Error as a plain Error (no
 * code, no context), so the worker sends the fields and the main thread builds the DelineateError again.
 */
export interface WorkerFailure {
  code: ErrorCode;
  message: string;
  context: Record<string, string | number>;
  /** what the failure wrapped (onnxruntime's own complaint, say): its name and message, the object itself cannot cross */
  cause?: { name: string; message: string };
}

/**
 * What the worker sends for anything thrown. A DelineateError keeps its code; anything else (onnxruntime, a bug) is an
 * inference failure, kept as the cause, never degraded to DLN_ERR_INTERNAL.
 */
export function toWorkerFailure(err: unknown): WorkerFailure {
  const e =
    err instanceof DelineateError
      ? err
      : new DelineateError("DLN_ERR_INFERENCE", err instanceof Error ? err.message : String(err), {}, { cause: err });
  const cause = e.cause;
  return {
    code: e.code,
    message: e.message,
    context: { ...e.context },
    ...(cause === undefined
      ? {}
      : {
          cause:
            cause instanceof Error
              ? { name: cause.name, message: cause.message }
              : { name: "Error", message: String(cause) },
        }),
  };
}

/** The main thread's DelineateError for a failure the worker sent, with `context` added (the series it was working on). */
export function fromWorkerFailure(f: WorkerFailure, context: Record<string, string | number> = {}): DelineateError {
  const cause = f.cause ? new WorkerCause(f.cause.name, f.cause.message) : undefined;
  return new DelineateError(f.code, f.message, { ...f.context, ...context }, cause ? { cause } : undefined);
}

/** The cause of a worker failure, rebuilt on the main thread: the original error's name and message (its stack stays behind). */
export class WorkerCause extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}
