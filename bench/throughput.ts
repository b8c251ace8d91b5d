/**
 * `npm run bench:throughput`: sustained studies per minute through the whole node (C-STORE → change feed →
 * inference → SEG stored) for a burst of identical-size phantom studies, with the node's peak memory.
 * Appends its figures to bench/results.json under "throughput" and rewrites bench/THROUGHPUT.md.
 */

import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { startNodeProcess } from "../harness/nodeProcess.js";
import { startOrthanc, waitFor } from "../harness/orthanc.js";
import { tempDir } from "../harness/tempDir.js";
import { ROOT, storescu } from "../harness/tools.js";
import { writePhantomSeries } from "../src/fixtures/phantom.js";
import type { Job } from "../src/jobs/job.js";
import { machineFacts, mergeResults, runBench } from "./record.js";

const STUDIES = Number(process.env.BENCH_STUDIES ?? 20);
const SIZE = 256,
  SLICES = 100;

async function main(): Promise<void> {
  const work = tempDir("throughput-");
  const orthanc = await startOrthanc();
  const node = await startNodeProcess(orthanc, path.join(work, "data"), { logFile: path.join(work, "node.log") });
  try {
    for (let i = 0; i < STUDIES; i++) {
      writePhantomSeries(path.join(work, "studies", `s${i}`), {
        size: SIZE,
        slices: SLICES,
        pixelSpacing: 1.5,
        sliceSpacing: 3,
        patientName: "Bench^Throughput",
        patientID: `TP-${i}`,
      });
    }
    const t0 = Date.now();
    await storescu(orthanc.dicomPort, orthanc.aet, path.join(work, "studies"));
    const sent = Date.now();
    const jobs = await waitFor(
      "every job to finish",
      async () => {
        const all = (await (await node.api("/api/jobs?kind=segment")).json()) as Job[];
        return all.length === STUDIES && all.every((j) => j.state === "done") ? all : undefined;
      },
      1_800_000,
      250,
    );
    const routes = (await (await node.api("/api/jobs?kind=route")).json()) as Job[];
    const firstStart = Math.min(...routes.map((j) => j.createdAt));
    const lastDone = Math.max(...jobs.map((j) => j.updatedAt));
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${node.pid()}/status`, "utf8"));
    const result = {
      studies: STUDIES,
      studySize: `${SIZE}×${SIZE}×${SLICES}`,
      sendSeconds: (sent - t0) / 1000,
      processingSeconds: (lastDone - firstStart) / 1000,
      studiesPerMinute: Math.round((STUDIES / ((lastDone - firstStart) / 60_000)) * 10) / 10,
      nodePeakRssMiB: hwm ? Math.round(Number(hwm[1]) / 1024) : NaN,
      concurrency: 1,
    };
    const machine = machineFacts();
    mergeResults({ throughput: { machine, ...result } });
    const md = [
      "# Benchmark: sustained throughput",
      "",
      "Written by `npm run bench:throughput` (bench/throughput.ts). A burst of phantom CT studies sent by one storescu",
      "association; the node (one worker, CPU) takes them from Orthanc's change feed and stores a SEG for each.",
      "Processing time runs from the first job's creation to the last job's completion. Sending and processing overlap",
      "and share the same cores: when the send takes about as long as the processing, the figure is bounded by",
      "Orthanc's C-STORE ingest rather than by the node.",
      "",
      `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; Node ${machine.node}; ${machine.date}.`,
      "",
      "| studies | size | send (s) | processing (s) | studies/min | node peak RSS (MiB) |",
      "| --- | --- | --- | --- | --- | --- |",
      `| ${result.studies} | ${result.studySize} | ${result.sendSeconds.toFixed(1)} | ${result.processingSeconds.toFixed(1)} | ${result.studiesPerMinute} | ${result.nodePeakRssMiB} |`,
      "",
    ].join("\n");
    writeFileSync(path.join(ROOT, "bench", "THROUGHPUT.md"), md);
    process.stdout.write(md);
  } finally {
    await node.stop();
    await orthanc.stop();
  }
}

runBench(main);
