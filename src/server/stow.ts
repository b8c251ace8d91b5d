import express from "express";
import type { PushedStudies } from "../ingest/pushedStudies.js";
import type { Logger } from "../log.js";
import { BodyTooLargeError, boundaryOf, readMultipartStream } from "../pacs/multipart.js";

/**
 * Delineate's own STOW-RS (POST /dicom-web/studies[/{study}]), so any PACS or modality can push over DICOMweb.
 * Each instance is kept or refused on its own, and the answer lists both (PS3.18: 200 all stored, 202 some
 * refused, 409 none stored). The body is read as a stream, one instance at a time; over maxBodyBytes it gets 413.
 * A study is queued once nothing more has arrived for ingest.stow.quietSeconds.
 */
export function stowRouter(deps: {
  pushed: PushedStudies;
  received: (studyUID: string) => Promise<void>;
  maxBodyBytes: number;
  log: Logger;
}): express.Router {
  const router = express.Router();
  const handler: express.RequestHandler = async (req, res) => {
    const contentType = req.get("content-type") ?? "";
    let boundary: string;
    try {
      if (!/^multipart\/related\b/i.test(contentType)) throw new Error(`content type is "${contentType}"`);
      boundary = boundaryOf(contentType);
    } catch (err) {
      res
        .status(400)
        .json({ error: `expected multipart/related; type="application/dicom": ${(err as Error).message}` });
      return;
    }
    if (Number(req.get("content-length") ?? 0) > deps.maxBodyBytes) {
      res.status(413).json({ error: `request body over ${deps.maxBodyBytes} bytes` });
      return;
    }
    const stored: Record<string, unknown>[] = [];
    const failed: Record<string, unknown>[] = [];
    const studies = new Set<string>();
    // Parts are read and kept one at a time as they arrive: memory holds one instance, not the request.
    let i = 0;
    let bodyError: { status: number; error: string } | undefined;
    try {
      for await (const part of readMultipartStream(req, boundary, deps.maxBodyBytes)) {
        i++;
        const r = deps.pushed.accept(part, typeof req.params.study === "string" ? req.params.study : undefined);
        if ("error" in r) {
          failed.push({ "00081197": { vr: "US", Value: [0xc000] } }); // Error: cannot understand
          deps.log.warn("STOW-RS instance refused", { part: i, reason: r.error });
        } else {
          stored.push({ "00081150": { vr: "UI", Value: [r.sopClass] }, "00081155": { vr: "UI", Value: [r.sop] } });
          studies.add(r.study);
        }
      }
    } catch (err) {
      bodyError =
        err instanceof BodyTooLargeError
          ? { status: 413, error: err.message }
          : { status: 400, error: `malformed multipart body: ${(err as Error).message}` };
    }
    // Instances kept before a bad or over-long body ended are complete files: their studies still count as received.
    for (const s of studies) await deps.received(s);
    if (bodyError) {
      deps.log.warn("STOW-RS request cut short", {
        stored: stored.length,
        refused: failed.length,
        error: bodyError.error,
      });
      req.resume(); // drain what is left so the connection can answer
      res.status(bodyError.status).json({ error: bodyError.error, stored: stored.length });
      return;
    }
    deps.log.info("STOW-RS request", {
      stored: stored.length,
      refused: failed.length,
      studyInstanceUIDs: [...studies],
    });
    const status = failed.length === 0 ? 200 : stored.length ? 202 : 409;
    res
      .status(status)
      .type("application/dicom+json")
      .send(
        JSON.stringify({
          ...(stored.length ? { "00081199": { vr: "SQ", Value: stored } } : {}),
          ...(failed.length ? { "00081198": { vr: "SQ", Value: failed } } : {}),
        }),
      );
  };
  router.post("/studies", handler);
  router.post("/studies/:study", handler);
  return router;
}
