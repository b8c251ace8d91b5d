import type { ErrorRequestHandler, RequestHandler } from "express";
import { DelineateError, type ErrorCode } from "../errors.js";
import type { Logger } from "../log.js";

/**
 * What a request that failed is answered with: its status and a JSON `{ code, message }`, never a stack or a path
 * on disk (Express's default handler printed both), and never the request's own content (a JSON parser's message
 * quotes the body, which may hold patient data).
 */
export interface ErrorAnswer {
  status: number;
  code: ErrorCode;
  message: string;
}

/** body-parser's and the router's client faults (their `type`), each with a message of our own */
const CLIENT_FAULTS: Record<string, string> = {
  "entity.parse.failed": "the request body is not valid JSON",
  "entity.too.large": "the request body (after decompression) is over the limit",
  "encoding.unsupported": "the request body's content encoding is not supported",
  "charset.unsupported": "the request body's charset is not supported",
  "request.aborted": "the request body was cut short",
  "request.size.invalid": "the request body is not as long as its Content-Length says",
  "stream.encoding.set": "the request body could not be read",
  "entity.verify.failed": "the request body could not be read",
};

/** Status of each DelineateError a handler may throw (the rest are ours: 500). */
function statusOf(code: ErrorCode): number {
  switch (code) {
    case "DLN_ERR_UID_INVALID":
    case "DLN_ERR_STOW_INVALID":
    case "DLN_ERR_REQUEST_INVALID":
      return 400;
    case "DLN_ERR_STOW_TOO_LARGE":
      return 413;
    case "DLN_ERR_STOW_FULL":
      return 507;
    case "DLN_ERR_PACS_UNAVAILABLE":
    case "DLN_ERR_PACS_REJECTED":
    case "DLN_ERR_PACS_MALFORMED":
      return 502;
    default:
      return 500;
  }
}

/** The answer for anything thrown by a handler or a body parser. */
export function errorAnswer(err: unknown): ErrorAnswer {
  if (err instanceof DelineateError) {
    const status = typeof err.context.status === "number" ? err.context.status : statusOf(err.code);
    return { status, code: err.code, message: status >= 500 && status !== 502 ? "internal error" : err.message };
  }
  const e = (err ?? {}) as { status?: unknown; statusCode?: unknown; type?: unknown };
  const status = Number(e.status ?? e.statusCode);
  if (Number.isInteger(status) && status >= 400 && status < 500) {
    const known = typeof e.type === "string" ? CLIENT_FAULTS[e.type] : undefined;
    // the router's "Failed to decode param" (a malformed % escape) has no type
    const message = known ?? (err instanceof URIError ? "a malformed % escape in the URL" : "the request is not valid");
    return { status, code: "DLN_ERR_REQUEST_INVALID", message };
  }
  return { status: 500, code: "DLN_ERR_INTERNAL", message: "internal error" };
}

/**
 * The one error handler of the app, mounted last: every failure is answered `{ code, message }` with its status.
 * A server fault is logged with its message (never the request's content); the client sees only "internal error".
 */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    const answer = errorAnswer(err);
    if (answer.status >= 500)
      log.error("request failed", { method: req.method, code: answer.code, error: (err as Error)?.message });
    if (res.headersSent) {
      next(err); // Express closes the connection: the answer has started and cannot be replaced
      return;
    }
    res.status(answer.status).json({ code: answer.code, message: answer.message });
  };
}

/** Requests no route took: 404 in the same shape. */
export const notFound: RequestHandler = (_req, res) => {
  res.status(404).json({ code: "DLN_ERR_REQUEST_INVALID", message: "no such resource" });
};
