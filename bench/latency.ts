/**
 * `npm run bench`: arrival-to-SEG-stored latency for one study through the whole node, with the time of
 * each stage, against a real Orthanc on this machine. Writes bench/results.json and bench/RESULTS.md.
 *
 * "Arrival" is the end of the modality's C-STORE (storescu). Ingest wait runs from there to the job's
 * creation: Orthanc's StableAge (2 s here, as in the tests) plus the change-feed poll (0.5 s here).
 */

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { prepareAbdomenStudy } from "../harness/data.js";
import { startNodeProcess } from "../harness/nodeProcess.js";
import { startOrthanc, waitFor } from "../harness/orthanc.js";
import { tempDir } from "../harness/tempDir.js";
import { exec, ROOT, sharedData, storescu } from "../harness/tools.js";
import { str } from "../src/dicom/dataset.js";
import { writePhantomSeries } from "../src/fixtures/phantom.js";
import { DicomWebClient } from "../src/pacs/dicomweb.js";
import { machineFacts, mergeResults, runBench } from "./record.js";

interface CaseResult {
  case: string;
  dims: string;
  totalSeconds: number;
  stagesSeconds: Record<string, number>;
  nodePeakRssMiB: number;
  /** user + system CPU of the node's process (every thread: the inference worker's too) from start to the result */
  nodeCpuSeconds: number;
  /** total less ingestWait: what the node itself takes once the study is announced */
  afterIngestSeconds?: number;
}

async function runCase(
  name: string,
  dims: string,
  prepare: (dir: string) => Promise<{ dir: string; study: string }>,
): Promise<CaseResult> {
  const work = tempDir("bench-");
  const orthanc = await startOrthanc();
  const { dir, study } = await prepare(path.join(work, "sample"));
  mkdirSync(path.join(work, "node"));
  const node = await startNodeProcess(orthanc, path.join(work, "node", "data"), {
    logFile: path.join(work, "node.log"),
  });
  try {
    const pacs = new DicomWebClient({
      url: orthanc.url,
      dicomWebRoot: "/dicom-web",
      username: orthanc.username,
      password: orthanc.password,
      timeoutMs: 120_000,
    });
    await storescu(orthanc.dicomPort, orthanc.aet, dir);
    const arrival = Date.now();
    const [job] = await waitFor("the job", () => node.settled(study), 600_000, 100);
    if (job?.state !== "done" || job.kind !== "segment")
      throw new Error(`${name}: ${job?.kind} job ${job?.state}: ${job?.error?.message}`);
    const [routeJob] = await node.jobs(study, "route");
    const segs = (await pacs.searchSeries(study)).filter((s) => str(s, "Modality") === "SEG");
    if (segs.length !== 1) throw new Error(`${name}: ${segs.length} SEG series`);
    const stored = job.updatedAt; // the job is marked done right after the PACS accepted the SEG
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${node.pid()}/status`, "utf8"));
    // fields 14 and 15 of /proc/PID/stat (after the parenthesised name): utime and stime in clock ticks (100 a second)
    const ticks = readFileSync(`/proc/${node.pid()}/stat`, "utf8").split(") ")[1]!.split(" ");
    const cpuSeconds = (Number(ticks[11]) + Number(ticks[12])) / 100;
    return {
      case: name,
      dims,
      totalSeconds: (stored - arrival) / 1000,
      // ingestWait: until the study was announced (the route job made); route: the route job's own time
      stagesSeconds: { ingestWait: (routeJob!.createdAt - arrival) / 1000, ...routeJob!.timings, ...job.timings },
      nodePeakRssMiB: hwm ? Math.round(Number(hwm[1]) / 1024) : NaN,
      nodeCpuSeconds: cpuSeconds,
    };
  } finally {
    await node.stop();
    await orthanc.stop();
  }
}

async function main(): Promise<void> {
  const results: CaseResult[] = [];
  const abdomen = sharedData("totalseg-ct-abdomen-j2k/dicom");
  if (!abdomen.skip) {
    results.push(
      await runCase("real abdominal CT (../shared/data item 3)", "512×512×20", async (dir) => {
        const s = await prepareAbdomenStudy(abdomen.path, dir);
        return { dir, study: s.studyInstanceUID };
      }),
    );
  }
  results.push(
    await runCase("synthetic thorax phantom (writePhantomSeries)", "512×512×300", async (dir) => {
      const s = writePhantomSeries(dir, {
        size: 512,
        slices: 300,
        pixelSpacing: 0.8,
        sliceSpacing: 1,
        patientName: "Bench^Phantom",
        patientID: "BENCH-1",
      });
      return { dir, study: s.studyInstanceUID };
    }),
  );

  const orthancVersion = (await exec("Orthanc", ["--version"])).stdout.split("\n")[0];
  const machine = machineFacts({ orthanc: orthancVersion ?? "unknown" });
  const loadAverage = os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(", ");
  // the target (issue 19, ≤ 5 s for 512×512×300) excludes the stability wait: arrival → stored less ingestWait
  for (const r of results) r.afterIngestSeconds = r.totalSeconds - (r.stagesSeconds.ingestWait ?? 0);
  mergeResults({ benchmark: "arrival-to-SEG-stored latency", machine, loadAverageAtEnd: loadAverage, results });
  const stages = ["ingestWait", "route", "fetch", "volume", "inference", "encode", "store"];
  const md = [
    "# Benchmark: arrival to SEG stored",
    "",
    "Written by `npm run bench` (bench/latency.ts); do not edit by hand. One study at a time through the whole node",
    "(`delineate serve` against a real Orthanc on loopback, CPU inference with the shipped `ct-body` model). Arrival is the",
    "end of the modality's C-STORE; ingest wait includes Orthanc's StableAge of 2 s and a 0.5 s change-feed poll.",
    "",
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ${machine.os}; Node ${machine.node}; ${machine.orthanc}; ${machine.date}. Load average at the end: ${loadAverage}.`,
    "",
    `| case | size | total (s) | total − ingestWait (s) | ${stages.join(" | ")} | node CPU (s) | node peak RSS (MiB) |`,
    `| --- | --- | --- | --- | ${stages.map(() => "---").join(" | ")} | --- | --- |`,
    ...results.map(
      (r) =>
        `| ${r.case} | ${r.dims} | ${r.totalSeconds.toFixed(2)} | ${(r.afterIngestSeconds ?? NaN).toFixed(2)} | ${stages.map((s) => (r.stagesSeconds[s] ?? NaN).toFixed(2)).join(" | ")} | ${r.nodeCpuSeconds.toFixed(2)} | ${r.nodePeakRssMiB} |`,
    ),
    "",
  ].join("\n");
  writeFileSync(path.join(ROOT, "bench", "RESULTS.md"), md);
  process.stdout.write(md);
}

runBench(main);
