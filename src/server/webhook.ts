import express from "express";
import { isDicomUid } from "../dicom/uids.js";
import type { Logger } from "../log.js";

/**
 * POST /api/webhook/stable-study {"StudyInstanceUID": "..."}: a PACS announces a complete study (Orthanc does
 * it from orthanc/delineate-webhook.lua). Announcing a study again, or by feed and webhook both, routes it again at
 * most, and never makes a second segment job. Mounted behind the API token; bodies over 16 KiB are refused; while
 * `pending.max` route jobs from the PACS are queued, a new announcement gets 429 DLN_ERR_INGEST_BUSY.
 */
export function webhookRouter(deps: {
  announce: (studyInstanceUID: string) => Promise<number>;
  /** route jobs from the PACS queued now, and the most there may be before an announcement is refused (429) */
  pending?: { count: () => Promise<number>; max: number };
  log: Logger;
}): express.Router {
  const router = express.Router();
  router.post("/stable-study", express.json({ limit: "16kb" }), async (req, res) => {
    const uid = (req.body as { StudyInstanceUID?: unknown } | undefined)?.StudyInstanceUID;
    if (!isDicomUid(uid)) {
      res.status(400).json({ code: "DLN_ERR_UID_INVALID", message: 'expected {"StudyInstanceUID": "<a DICOM UID>"}' });
      return;
    }
    // Anyone with the token can announce any UID; a study that does not exist waits ingest.absentStudySeconds for
    // it before it fails. The queue is capped so such announcements cannot pile up jobs without bound.
    if (deps.pending && (await deps.pending.count()) >= deps.pending.max) {
      deps.log.warn("webhook announcement refused: too many studies pending", { studyInstanceUID: uid });
      res
        .set("Retry-After", "60")
        .status(429)
        .json({
          code: "DLN_ERR_INGEST_BUSY",
          message: `${deps.pending.max} announced studies are waiting to be routed already (ingest.maxPendingStudies); try again later`,
        });
      return;
    }
    const queued = (await deps.announce(uid)) > 0;
    deps.log.info("study announced by webhook", { studyInstanceUID: uid, queued });
    res.status(queued ? 201 : 200).json({ studyInstanceUID: uid, queued });
  });
  return router;
}
