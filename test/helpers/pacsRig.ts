import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { str } from "../../src/dicom/dataset.js";
import type { Job } from "../../src/jobs/job.js";
import { DicomWebClient } from "../../src/pacs/dicomweb.js";
import type { NodeProcess } from "./nodeProcess.js";
import { type OrthancOptions, startOrthanc, type TestOrthanc, waitFor } from "./orthanc.js";
import { tempDir } from "./tools.js";

/** What the suites that run a node against a real Orthanc set up alike: a work folder, the PACS, a client on it. */
export interface PacsRig {
  work: string;
  orthanc: TestOrthanc;
  /** a DICOMweb client straight on the PACS (not through any proxy the node is given) */
  pacs: DicomWebClient;
  /** how many SEG series the PACS holds for the study */
  segCount(study: string): Promise<number>;
}

export async function startPacsRig(prefix: string, options: OrthancOptions = {}): Promise<PacsRig> {
  const work = tempDir(prefix);
  const orthanc = await startOrthanc(options);
  const pacs = new DicomWebClient({
    url: orthanc.url,
    dicomWebRoot: "/dicom-web",
    username: orthanc.username,
    password: orthanc.password,
    timeoutMs: 60_000,
  });
  const segCount = async (study: string) =>
    (await pacs.searchSeries(study)).filter((s) => str(s, "Modality") === "SEG").length;
  return { work, orthanc, pacs, segCount };
}

/** The entries of a node's JSON log, in the order written. */
export function logEntries(logFile: string): Record<string, unknown>[] {
  return readFileSync(logFile, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The study's one segment job once it has ended; fails if the study ever has another job or a second one. */
export function finishedSegmentJob(
  node: NodeProcess,
  study: string,
  timeoutMs: number,
  everyMs: number,
): Promise<Job | undefined> {
  return waitFor(
    `a finished job for ${study}`,
    async () => {
      const jobs = await node.settled(study);
      assert.ok(
        !jobs || (jobs.length === 1 && jobs[0]!.kind === "segment"),
        `one segment job for ${study}: ${JSON.stringify(jobs)}`,
      );
      return jobs?.[0];
    },
    timeoutMs,
    everyMs,
  );
}
