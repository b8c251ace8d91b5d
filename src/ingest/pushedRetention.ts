import type { JobStore } from "../jobs/jobStore.js";
import type { Logger } from "../log.js";
import type { PushedStudies } from "./pushedStudies.js";

/**
 * Deletes the files of pushed studies nothing has been written to for `maxAgeMs` and that no job is queued for or
 * running on: pushed data was never deleted (1,000 single-instance studies left 1,000 folders for ever). Their jobs
 * stay, as the record of what was done; a study pushed again later is kept and routed again.
 * @returns the studies whose files were deleted
 */
export async function sweepPushed(
  pushed: PushedStudies,
  store: Pick<JobStore, "list">,
  now: number,
  maxAgeMs: number,
  log: Logger,
): Promise<string[]> {
  const removed: string[] = [];
  for (const { studyInstanceUID, lastWrittenMs } of pushed.studies()) {
    if (now - lastWrittenMs < maxAgeMs) continue;
    const jobs = await store.list({ studyInstanceUID }, 10_000);
    if (jobs.some((j) => j.state === "queued" || j.state === "running")) continue;
    const bytes = await pushed.remove(studyInstanceUID);
    removed.push(studyInstanceUID);
    log.info("pushed study deleted (retention)", { studyInstanceUID, bytes });
  }
  return removed;
}
