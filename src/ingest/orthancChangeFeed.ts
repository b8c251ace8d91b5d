import { DelineateError } from "../errors.js";
import type { Logger } from "../log.js";
import type { OrthancRest } from "../pacs/orthancChanges.js";
import { repeatEvery } from "./repeat.js";

export const CHANGE_FEED_CURSOR = "orthanc-changes";

/** Where the feed records what it has seen: the job store, in one transaction with the new jobs. */
export interface FeedSink {
  cursor(name: string): Promise<number | undefined>;
  enqueue(studyUIDs: readonly string[], cursor: { name: string; value: number }): Promise<number>;
}

/**
 * Polls Orthanc's change feed for StableStudy events and turns each into a route job. The cursor advances only
 * together with the jobs it produced, so a restart neither misses nor repeats a study; a study announced
 * again (a series added later, or the node's own SEG stored into it) is routed again, and the store's
 * uniqueness keeps a series that was already segmented from being segmented twice.
 */
export class OrthancChangeFeed {
  private loop: { stop(): Promise<void> } | undefined;

  constructor(
    private readonly orthanc: OrthancRest,
    private readonly sink: FeedSink,
    private readonly intervalMs: number,
    private readonly onNewJobs: () => void,
    private readonly log: Logger,
  ) {}

  /** Reads the feed to its end once; returns the number of new jobs. */
  async pollOnce(): Promise<number> {
    let added = 0;
    for (;;) {
      const since = (await this.sink.cursor(CHANGE_FEED_CURSOR)) ?? 0;
      const page = await this.orthanc.changes(since);
      const studies: string[] = [];
      for (const change of page.changes) {
        if (change.changeType !== "StableStudy") continue;
        const uid = await this.orthanc.studyInstanceUID(change.id).catch((err: unknown) => {
          // a study whose UID is not valid is passed over, not retried: retrying would hold the cursor for ever
          if (!(err instanceof DelineateError && err.code === "DLN_ERR_UID_INVALID")) throw err;
          this.log.warn("stable study passed over: its StudyInstanceUID is not valid", { orthancStudyId: change.id });
          return null;
        });
        if (uid === null) continue;
        if (uid) studies.push(uid);
        else
          this.log.warn("stable study vanished before it could be queued", {
            orthancStudyId: change.id,
            seq: change.seq,
          });
      }
      const n = await this.sink.enqueue(studies, { name: CHANGE_FEED_CURSOR, value: page.last });
      if (studies.length)
        this.log.info("studies announced by the change feed", {
          studyInstanceUIDs: studies,
          routeJobs: n,
          cursor: page.last,
        });
      added += n;
      if (page.done || page.last === since) break;
    }
    if (added > 0) this.onNewJobs();
    return added;
  }

  start(): void {
    this.loop = repeatEvery(
      this.intervalMs,
      () => this.pollOnce(),
      (err) => this.log.warn("change feed poll failed; will try again", { error: err.message }),
    );
  }

  async stop(): Promise<void> {
    await this.loop?.stop();
  }
}
