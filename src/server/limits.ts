import { createServer, type Server } from "node:http";
import type { RequestHandler } from "express";

/** How long a client may take, configured under `http`. */
export interface ServerTimeouts {
  /** to send a request's headers (slowloris) */
  headersTimeoutSeconds: number;
  /** to send a whole request, body included: a body trickled at one byte a second is cut at this */
  requestTimeoutSeconds: number;
}

/**
 * The node's HTTP server with its timeouts. Node checks them on a timer (every 30 s by default), so a 20 s header
 * timeout could let a connection live 50 s; the check runs every second here, or more often for shorter timeouts.
 */
export function createNodeServer(handler: Parameters<typeof createServer>[1], t: ServerTimeouts): Server {
  const headersTimeout = t.headersTimeoutSeconds * 1000;
  const requestTimeout = t.requestTimeoutSeconds * 1000;
  return createServer(
    {
      headersTimeout,
      // Node requires requestTimeout >= headersTimeout (0 = none, which we never set: minimum 1 s in the schema)
      requestTimeout: Math.max(requestTimeout, headersTimeout),
      connectionsCheckingInterval: Math.min(1000, headersTimeout / 2),
    },
    handler,
  );
}

/**
 * At most `max` requests through this handler at once; the next are answered 429 at once with Retry-After, before
 * their bodies are read (and the connection closed, since a body is still in it). A slot is freed when the answer
 * is sent or the client goes away, whichever comes first.
 */
export function concurrencyCap(max: number, retryAfterSeconds = 5): RequestHandler {
  let inFlight = 0;
  return (_req, res, next) => {
    if (inFlight >= max) {
      res
        .set({ "Retry-After": String(retryAfterSeconds), Connection: "close" })
        .status(429)
        .json({ code: "DLN_ERR_REQUEST_INVALID", message: `more than ${max} requests at once: retry later` });
      return;
    }
    inFlight++;
    let freed = false;
    const free = () => {
      if (!freed) inFlight--;
      freed = true;
    };
    res.once("finish", free);
    res.once("close", free);
    next();
  };
}
