import { num, str } from "../dicom/dataset.js";
import type { JobStore } from "../jobs/jobStore.js";
import type { Logger } from "../log.js";
import type { DicomWebClient } from "../pacs/dicomweb.js";
import { repeatEvery } from "./repeat.js";

/** DICOM DA of a day `daysBack` before `now`. */
function dicomDate(now: Date, daysBack: number): string {
  const d = new Date(now.getTime() - daysBack * 86_400_000);
  return `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, "0")}${String(d.getDate()).padStart(2, "0")}`;
}

/**
 * Ingest for any DICOMweb server: polls QIDO-RS for studies dated within the look-back window and queues a
 * study once its NumberOfStudyRelatedInstances has stayed the same for the quiet period. DICOMweb has no
 * "received since" query, so a study whose StudyDate is older than the window is not seen: use the change
 * feed or the webhook where the server offers them.
 */
export class QidoPoller {
  private loop: { stop(): Promise<void> } | undefined;

  constructor(
    private readonly pacs: DicomWebClient,
    private readonly store: Pick<JobStore, "observeStudy">,
    private readonly options: { intervalMs: number; lookbackDays: number; quietSeconds: number },
    private readonly onNewJobs: () => void,
    private readonly log: Logger,
  ) {}

  /** One poll; returns the number of new jobs. */
  async pollOnce(now = new Date()): Promise<number> {
    const studies = await this.pacs.searchStudies({
      StudyDate: `${dicomDate(now, this.options.lookbackDays)}-`,
      includefield: "00201208",
    });
    const queued: string[] = [];
    for (const s of studies) {
      const uid = str(s, "StudyInstanceUID");
      const instances = num(s, "NumberOfStudyRelatedInstances");
      if (!uid || instances === undefined) continue;
      if (await this.store.observeStudy(uid, instances, now.getTime(), this.options.quietSeconds * 1000))
        queued.push(uid);
    }
    if (queued.length) {
      this.log.info("studies announced by QIDO-RS polling", { studyInstanceUIDs: queued, routeJobs: queued.length });
      this.onNewJobs();
    }
    return queued.length;
  }

  start(): void {
    this.loop = repeatEvery(
      this.options.intervalMs,
      () => this.pollOnce(),
      (err) => this.log.warn("QIDO-RS poll failed; will try again", { error: err.message }),
    );
  }

  async stop(): Promise<void> {
    await this.loop?.stop();
  }
}
