import express from "express";
import { isDicomUid } from "../dicom/uids.js";
import type { Logger } from "../log.js";

/**
 * POST /api/webhook/stable-study {"StudyInstanceUID": "..."}: a PACS announces a complete study (Orthanc does
 * it from orthanc/delineate-webhook.lua). Announcing a study again, or by feed and webhook both, routes it again at
 * most, and never makes a second segment job. Mounted behind the API token; bodies over 16 KiB are refused.
 */
export function webhookRouter(deps: {
  announce: (studyInstanceUID: string) => Promise<number>;
  log: Logger;
}): express.Router {
  const router = express.Router();
  router.post("/stable-study", express.json({ limit: "16kb" }), async (req, res) => {
    const uid = (req.body as { StudyInstanceUID?: unknown } | undefined)?.StudyInstanceUID;
    if (!isDicomUid(uid)) {
      res.status(400).json({ code: "DLN_ERR_UID_INVALID", message: 'expected {"StudyInstanceUID": "<a DICOM UID>"}' });
      return;
    }
    const queued = (await deps.announce(uid)) > 0;
    deps.log.info("study announced by webhook", { studyInstanceUID: uid, queued });
    res.status(queued ? 201 : 200).json({ studyInstanceUID: uid, queued });
  });
  return router;
}
