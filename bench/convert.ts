/**
 * `delineate convert` against dcm2niix on the same 512×512×300 CT series, in the same run: wall time and peak RSS of
 * each (GNU time's %e and %M), three runs each, medians reported. The series is built from real data: the 20 slices
 * of ../shared/data item 3 (Siemens abdomen CT, JPEG 2000 lossless; its empty SOPClassUID set to CT Image), decoded and
 * repeated 15 times along z at its 2 mm spacing, each copy with its own SOPInstanceUID, InstanceNumber and position,
 * written as Explicit VR Little Endian. Both write uncompressed .nii (dcm2niix -z n), so neither pays for gzip.
 */

import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { tempDir } from "../harness/tempDir.js";
import { ROOT, SHARED_DATA } from "../harness/tools.js";
import { type NaturalDataset, parsePart10, writePart10 } from "../src/dicom/dataset.js";
import { encapsulatedFrames, loadPixelDecoders } from "../src/dicom/pixelDecoders.js";
import { SopClass } from "../src/dicom/uids.js";
import { profileSplit, splitText } from "./profile.js";
import { machineFacts, mergeResults, runBench } from "./record.js";

const run = promisify(execFile);
const COPIES = 15;

async function buildSeries(dir: string): Promise<number> {
  const source = path.join(SHARED_DATA, "totalseg-ct-abdomen-j2k", "dicom");
  const decoders = await loadPixelDecoders();
  const slices = readdirSync(source)
    .map((f) => parsePart10(new Uint8Array(readFileSync(path.join(source, f)))))
    .sort(
      (a, b) =>
        Number((a.dataset.ImagePositionPatient as number[])[2]) -
        Number((b.dataset.ImagePositionPatient as number[])[2]),
    )
    .map((p) => {
      // decoded by the JPEG 2000 decoder whose output the parity suite checks against dcm2niix's for this very item
      const ds = p.dataset;
      const stored = decoders.decode(p.transferSyntaxUID, encapsulatedFrames(ds.PixelData, 1)[0]!, {
        rows: 512,
        columns: 512,
        bitsAllocated: 16,
        bitsStored: Number(ds.BitsStored),
        samplesPerPixel: 1,
      });
      const dataset: NaturalDataset = {
        ...ds,
        SOPClassUID: SopClass.CTImageStorage,
        PixelData: [stored.slice().buffer],
        _vrMap: { PixelData: "OW" },
      };
      return { ...p, dataset };
    });
  const z = (s: (typeof slices)[number]) =>
    Number((s.dataset as { ImagePositionPatient: number[] }).ImagePositionPatient[2]);
  const z0 = z(slices[0]!);
  const step = z(slices[1]!) - z0;
  const series = path.join(dir, "series");
  mkdirSync(series);
  let n = 0;
  for (let copy = 0; copy < COPIES; copy++) {
    for (const s of slices) {
      const ipp = (s.dataset as { ImagePositionPatient: number[] }).ImagePositionPatient;
      const uid = `2.25.${BigInt(1e15) + BigInt(n)}`;
      writeFileSync(
        path.join(series, `${String(n).padStart(4, "0")}.dcm`),
        writePart10({
          ...s.dataset,
          SOPInstanceUID: uid,
          InstanceNumber: n + 1,
          ImagePositionPatient: [ipp[0], ipp[1], z0 + n * step],
          SliceLocation: z0 + n * step,
        }),
      );
      n++;
    }
  }
  return n;
}

interface Timing {
  seconds: number;
  /** user + system CPU seconds: less sensitive than wall time to other work on a shared machine */
  cpuSeconds: number;
  peakMiB: number;
}

async function timed(command: string, args: string[]): Promise<Timing> {
  const { stderr } = await run("/usr/bin/time", ["-f", "TIME %e %U %S %M", command, ...args], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const m = /TIME ([0-9.]+) ([0-9.]+) ([0-9.]+) ([0-9]+)\s*$/.exec(stderr);
  if (!m) throw new Error(`no timing in: ${stderr.slice(-500)}`);
  return { seconds: Number(m[1]), cpuSeconds: Number(m[2]) + Number(m[3]), peakMiB: Number(m[4]) / 1024 };
}

/** Where `delineate convert` spends its time, from one more run under `node --cpu-prof`. */
async function convertProfile(series: string, dir: string): Promise<Record<string, number>> {
  const profDir = path.join(dir, "profile");
  await run(process.execPath, [
    "--cpu-prof",
    `--cpu-prof-dir=${profDir}`,
    path.join(ROOT, "dist/src/cli/main.js"),
    "convert",
    series,
    "--out",
    path.join(dir, "profiled.nii"),
  ]);
  return profileSplit(profDir, {
    "header read and parse (scanFolder)": ["scanFolder"],
    "pixel read": ["pixelDataOf"],
    "rescale to int16": ["rescaleInt16"],
    "NIfTI writes": ["writeAll"],
    "module loading": ["loadAndTranslate", "compileSourceTextModule", "getModuleJobForImport", "moduleStrategy"],
    "volume plan": ["seriesToVolumes"],
    "garbage collection": ["(garbage collector)"],
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function main(): Promise<void> {
  const loadAverage = os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(", ");
  const dir = tempDir("bench-convert-");
  const slices = await buildSeries(dir);
  const series = path.join(dir, "series");
  const volumeMiB = (512 * 512 * slices * 2) / 2 ** 20; // int16 voxels, what both write
  const ours: Timing[] = [];
  const theirs: Timing[] = [];
  for (let i = 0; i < 3; i++) {
    ours.push(
      await timed(process.execPath, [
        path.join(ROOT, "dist/src/cli/main.js"),
        "convert",
        series,
        "--out",
        path.join(dir, `ours${i}.nii`),
      ]),
    );
    const out = path.join(dir, `dcm2niix${i}`);
    mkdirSync(out);
    theirs.push(await timed("dcm2niix", ["-z", "n", "-b", "n", "-f", "ref", "-o", out, series]));
  }
  const medians = (rs: Timing[]) => ({
    seconds: median(rs.map((r) => r.seconds)),
    cpuSeconds: median(rs.map((r) => r.cpuSeconds)),
    peakMiB: median(rs.map((r) => r.peakMiB)),
  });
  const o = medians(ours);
  const t = medians(theirs);
  const split = await convertProfile(series, dir);
  const { stdout: version } = await run("dcm2niix", ["-v"]).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
  const machine = machineFacts({
    dcm2niix:
      version
        .trim()
        .split("\n")
        .find((l) => /version/i.test(l)) ?? "unknown",
  });
  const timeRatio = o.seconds / t.seconds;
  const cpuRatio = o.cpuSeconds / t.cpuSeconds;
  const memoryOverVolume = o.peakMiB / volumeMiB;
  mergeResults({
    convert: {
      machine,
      slices,
      volumeMiB,
      ours: { runs: ours, ...o },
      dcm2niix: { runs: theirs, ...t },
      timeRatio,
      cpuRatio,
      memoryOverVolume,
      profileMs: split,
      loadAverage,
    },
  });
  const md = [
    "# Benchmark: `delineate convert` against dcm2niix",
    "",
    "Written by `npm run bench:convert` (bench/convert.ts); do not edit by hand. A 512×512×300 CT series built from the 20",
    "real slices of ../shared/data item 3 (decompressed, repeated 15 times along z at 2 mm, each file",
    "with its own UID and position), Explicit VR Little Endian. Both write uncompressed NIfTI; wall time and peak RSS from",
    "GNU time, median of 3 runs each, alternating.",
    "",
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ${machine.os}; Node ${machine.node}; ${machine.dcm2niix}; ${machine.date}.`,
    "",
    `Load average when it started: ${loadAverage}.`,
    "",
    "| converter | wall (s) | CPU, user + system (s) | peak RSS (MiB) |",
    "| --- | --- | --- | --- |",
    `| delineate convert | ${o.seconds.toFixed(2)} | ${o.cpuSeconds.toFixed(2)} | ${Math.round(o.peakMiB)} |`,
    `| dcm2niix | ${t.seconds.toFixed(2)} | ${t.cpuSeconds.toFixed(2)} | ${Math.round(t.peakMiB)} |`,
    "",
    `Time: ${timeRatio.toFixed(2)}× dcm2niix's wall time, ${cpuRatio.toFixed(2)}× its CPU time (target ≤ 1.0×). Memory: ${memoryOverVolume.toFixed(2)}× the volume's ${volumeMiB.toFixed(0)} MiB of int16 voxels (target ≤ 1.1×).`,
    "",
    `Where convert's time goes (one more run under \`node --cpu-prof\`, inclusive): ${splitText(split)}.`,
    "",
  ].join("\n");
  writeFileSync(path.join(ROOT, "bench", "CONVERT.md"), md);
  process.stdout.write(md);
}

runBench(main);
