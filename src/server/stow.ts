import express from "express";
import type { Logger } from "../log.js";
import { boundaryOf, parseMultipart } from "../pacs/multipart.js";
import type { PushedStudies } from "../ingest/pushedStudies.js";

/**
 * Delineate's own STOW-RS (POST /dicom-web/studies[/{study}]), so any PACS or modality can push over DICOMweb.
 * Each instance is kept or refused on its own, and the answer lists both (PS3.18: 200 all stored, 202 some
 * refused, 409 none stored). A study is queued once nothing more has arrived for ingest.stow.quietSeconds.
 */
export function stowRouter(deps: { pushed: PushedStudies; received: (studyUID: string) => void; maxBodyBytes: number; log: Logger }): express.Router {
  const router = express.Router();
  const raw = express.raw({ type: "multipart/related", limit: deps.maxBodyBytes });
  const handler: express.RequestHandler = (req, res) => {
    let parts: Uint8Array[];
    try {
      parts = parseMultipart(new Uint8Array(req.body as Buffer), boundaryOf(req.get("content-type") ?? ""));
    } catch (err) {
      res.status(400).json({ error: `expected multipart/related; type="application/dicom": ${(err as Error).message}` });
      return;
    }
    const stored: Record<string, unknown>[] = [];
    const failed: Record<string, unknown>[] = [];
    const studies = new Set<string>();
    for (const [i, part] of parts.entries()) {
      const r = deps.pushed.accept(part, typeof req.params.study === "string" ? req.params.study : undefined);
      if ("error" in r) {
        failed.push({ "00081197": { vr: "US", Value: [0xc000] } }); // Error: cannot understand
        deps.log.warn("STOW-RS instance refused", { part: i + 1, reason: r.error });
      } else {
        stored.push({ "00081150": { vr: "UI", Value: [r.sopClass] }, "00081155": { vr: "UI", Value: [r.sop] } });
        studies.add(r.study);
      }
    }
    for (const s of studies) deps.received(s);
    deps.log.info("STOW-RS request", { stored: stored.length, refused: failed.length, studyInstanceUIDs: [...studies] });
    const status = failed.length === 0 ? 200 : stored.length ? 202 : 409;
    res.status(status).type("application/dicom+json").send(JSON.stringify({
      ...(stored.length ? { "00081199": { vr: "SQ", Value: stored } } : {}),
      ...(failed.length ? { "00081198": { vr: "SQ", Value: failed } } : {}),
    }));
  };
  router.post("/studies", raw, handler);
  router.post("/studies/:study", raw, handler);
  return router;
}
