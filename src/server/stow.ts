import express from "express";
import { requireDicomUid } from "../dicom/uids.js";
import { DelineateError } from "../errors.js";
import { FailureReason, type PushedStudies } from "../ingest/pushedStudies.js";
import type { Logger } from "../log.js";
import { boundaryOf, readMultipartPieces } from "../pacs/multipart.js";
import { concurrencyCap } from "./limits.js";

/**
 * The boundary of a STOW-RS request, from its headers, before its body is read.
 * @throws DelineateError DLN_ERR_STOW_INVALID when it is not multipart/related or names no boundary,
 * DLN_ERR_STOW_TOO_LARGE when its Content-Length is over the limit
 */
function requestBoundary(req: express.Request, maxBodyBytes: number): string {
  const contentType = req.get("content-type") ?? "";
  const boundary = /^multipart\/related\b/i.test(contentType) ? boundaryOf(contentType) : undefined;
  if (!boundary) {
    throw new DelineateError(
      "DLN_ERR_STOW_INVALID",
      `expected multipart/related; type="application/dicom" with a boundary, not "${contentType}"`,
    );
  }
  if (Number(req.get("content-length") ?? 0) > maxBodyBytes) {
    throw new DelineateError("DLN_ERR_STOW_TOO_LARGE", `request body over ${maxBodyBytes} bytes`);
  }
  return boundary;
}

/** What a request body that could not be read is answered with: 413 when too large, else 400 (the client's). */
function bodyFailure(err: unknown): { status: number; error: DelineateError } {
  const error =
    err instanceof DelineateError
      ? err
      : new DelineateError(
          "DLN_ERR_STOW_INVALID",
          `the request body could not be read: ${(err as Error).message}`,
          {},
          {
            cause: err,
          },
        );
  const status = { DLN_ERR_STOW_TOO_LARGE: 413, DLN_ERR_STOW_FULL: 507 }[error.code as string] ?? 400;
  return { status, error };
}

/** How long a refused request's remaining body is read (and dropped) before the answer and the close. */
const DRAIN_MS = 2000;

/** Resolves once the request's body has all been read, the client has gone, or `ms` have passed. */
function drained(req: express.Request, ms: number): Promise<void> {
  if (req.readableEnded || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      req.off("end", done).off("close", done).off("error", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    req.once("end", done).once("close", done).once("error", done);
  });
}

type StowItem = Record<string, { vr: string; Value: unknown[] }>;

/**
 * The STOW-RS answer (PS3.18): the referenced and failed SOP sequences, 200 all stored, 202 some refused, 409 none
 * stored; nothing kept because the store is full is 507, so the sender knows to retry later, not fix its data.
 */
function answerStowed(res: express.Response, stored: readonly StowItem[], failed: readonly StowItem[]): void {
  const full = failed.length > 0 && failed.every((f) => f["00081197"]?.Value[0] === FailureReason.OutOfResources);
  const status = failed.length === 0 ? 200 : stored.length ? 202 : full ? 507 : 409;
  res
    .status(status)
    .type("application/dicom+json")
    .send(
      JSON.stringify({
        ...(stored.length ? { "00081199": { vr: "SQ", Value: stored } } : {}),
        ...(failed.length ? { "00081198": { vr: "SQ", Value: failed } } : {}),
      }),
    );
}

/**
 * Delineate's own STOW-RS (POST /dicom-web/studies[/{study}]), so any PACS or modality can push over DICOMweb.
 * Each instance is kept or refused on its own, and the answer lists both (PS3.18: 200 all stored, 202 some
 * refused, 409 none stored). The body is read as a stream, one instance at a time; over maxBodyBytes it gets 413.
 * A study is queued once nothing more has arrived for ingest.stow.quietSeconds.
 */
export function stowRouter(deps: {
  pushed: PushedStudies;
  /** a study received instances; `replacedSeries`: its series that had an instance replaced (overwrite policy) */
  received: (studyUID: string, replacedSeries: readonly string[]) => Promise<void>;
  maxBodyBytes: number;
  /** requests read at once (default 8); more get 429 */
  maxConcurrentRequests?: number;
  log: Logger;
}): express.Router {
  const router = express.Router();
  const handler: express.RequestHandler = async (req, res) => {
    let boundary: string;
    try {
      if (req.params.study !== undefined) requireDicomUid(req.params.study, "the study in the path");
      boundary = requestBoundary(req, deps.maxBodyBytes);
      if (deps.pushed.wouldOverflow(Number(req.get("content-length") ?? 0)))
        throw new DelineateError("DLN_ERR_STOW_FULL", "the pushed store is full (stow.maxStoredMiB)");
    } catch (err) {
      const { status, error } = bodyFailure(err);
      // answered before the body is read: close, so the client cannot reuse a connection with a body still in it;
      // what it is still sending is read and dropped first (briefly), or it may see a reset instead of the answer
      req.resume();
      await drained(req, DRAIN_MS);
      res.set("Connection", "close").status(status).json({ code: error.code, message: error.message });
      return;
    }
    const stored: StowItem[] = [];
    const failed: StowItem[] = [];
    const studies = new Map<string, Set<string>>(); // each study received, with its series that had an instance replaced
    // Parts are read and kept one at a time as they arrive: memory holds one instance, not the request.
    let i = 0;
    let bodyError: { status: number; error: DelineateError } | undefined;
    try {
      // destroyOnReturn false: when the reader stops early (a body over the limit), the request's own iterator
      // destroyed it, closing the socket while the client still sent (EPIPE instead of the 413 it should read)
      const body = req.iterator({ destroyOnReturn: false });
      for await (const part of readMultipartPieces(body, boundary, deps.maxBodyBytes)) {
        i++;
        const r = await deps.pushed.accept(part, typeof req.params.study === "string" ? req.params.study : undefined);
        if ("error" in r) {
          failed.push({
            ...(r.sopClass ? { "00081150": { vr: "UI", Value: [r.sopClass] } } : {}),
            ...(r.sop ? { "00081155": { vr: "UI", Value: [r.sop] } } : {}),
            "00081197": { vr: "US", Value: [r.reason] },
          });
          deps.log.warn("STOW-RS instance refused", { part: i, reason: r.error, sopInstanceUID: r.sop });
        } else {
          stored.push({ "00081150": { vr: "UI", Value: [r.sopClass] }, "00081155": { vr: "UI", Value: [r.sop] } });
          // an identical copy of a kept instance changes nothing: its study is not routed again for it
          if (r.outcome !== "unchanged") studies.set(r.study, studies.get(r.study) ?? new Set());
          // a replaced instance changes its series: the series' done results are redone (JobStore.notePushed)
          if (r.outcome === "replaced") studies.get(r.study)?.add(r.series);
        }
      }
    } catch (err) {
      bodyError = bodyFailure(err);
    }
    // a well-framed body with no part at all is not a request to store anything (PS3.18 wants one instance at least)
    if (!bodyError && i === 0)
      bodyError = bodyFailure(new DelineateError("DLN_ERR_STOW_INVALID", "the multipart body holds no part"));
    // Instances kept before a bad or over-long body ended are complete files: their studies still count as received.
    for (const [s, replaced] of studies) await deps.received(s, [...replaced]);
    if (bodyError) {
      deps.log.warn("STOW-RS request cut short", {
        stored: stored.length,
        refused: failed.length,
        code: bodyError.error.code,
        error: bodyError.error.message,
      });
      // Drain what is left so the client reads this answer, then close: a kept-alive connection answered mid-body
      // was reused by the client's next request, which then hung until the server's keep-alive timeout reset it.
      // The answer waits for the rest of the body (at most DRAIN_MS): answered and closed while the client still
      // sent, the client saw its connection reset and never read the answer.
      req.resume();
      await drained(req, DRAIN_MS);
      res
        .set("Connection", "close")
        .status(bodyError.status)
        .json({ code: bodyError.error.code, message: bodyError.error.message, stored: stored.length });
      return;
    }
    deps.log.info("STOW-RS request", {
      stored: stored.length,
      refused: failed.length,
      studyInstanceUIDs: [...studies.keys()],
    });
    answerStowed(res, stored, failed);
  };
  const cap = concurrencyCap(deps.maxConcurrentRequests ?? 8);
  router.post("/studies", cap, handler);
  router.post("/studies/:study", cap, handler);
  return router;
}
