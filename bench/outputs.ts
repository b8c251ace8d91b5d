/**
 * `npm run bench:outputs`: encoding cost of the outputs on a 512×512×300 grid, each case in its own process so
 * its peak memory is its own: our BINARY SEG with 100 labels beside dcmjs's derivations.Segmentation on the same
 * label map (the writer OHIF/cornerstone use), and our RTSTRUCT with 20 labels (dcmjs has no RTSTRUCT writer).
 * `-- --rtstruct-before DIR` also runs the RTSTRUCT case of another build (DIR: a checkout with its dist/ built, say
 * the commit before a change), interleaved with ours, three runs each, medians recorded: a before/after in one run.
 * Writes bench/OUTPUTS.md and the "outputs" entry of bench/results.json.
 */

import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import dcmjs from "dcmjs";
import { tempDir } from "../harness/tempDir.js";
import { ROOT } from "../harness/tools.js";
import { type NaturalDataset, writePart10 } from "../src/dicom/dataset.js";
import { SopClass, TransferSyntax } from "../src/dicom/uids.js";
import type { ModelLabel } from "../src/models/manifest.js";
import { buildSegmentation } from "../src/outputs/segmentation.js";
import { buildStructureSet } from "../src/outputs/structureSet.js";
import { newUid } from "../src/outputs/uid.js";
import type { Volume } from "../src/volume/volume.js";
import { profileSplit, splitText } from "./profile.js";
import { installedVersion, machineFacts, mergeResults, runBench } from "./record.js";

const [NX, NY, NZ] = [512, 512, 300];

const hwmMiB = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? NaN) / 1024;

function makeVolume(): Volume {
  const slices = Array.from({ length: NZ }, (_, k) => ({
    sopInstanceUID: `1.2.826.0.1.3680043.10.1.${k + 1}`,
    sopClassUID: SopClass.CTImageStorage,
    position: [-204.8, -204.8, -k * 1.0] as [number, number, number],
  }));
  return {
    dims: [NX, NY, NZ],
    spacing: [0.8, 0.8, 1],
    origin: slices[0]!.position,
    direction: [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, -1],
    ],
    data: new Float32Array(0), // the encoders never read intensities
    studyInstanceUID: "1.2.826.0.1.3680043.10.1",
    seriesInstanceUID: "1.2.826.0.1.3680043.10.2",
    frameOfReferenceUID: "1.2.826.0.1.3680043.10.3",
    slices,
  };
}

/** `count` organs: discs on a grid, each over 60 slices (staggered), so every label has real outlines and extents. */
function makeLabels(count: number): Uint8Array {
  const labels = new Uint8Array(NX * NY * NZ);
  const side = Math.ceil(Math.sqrt(count));
  const cell = Math.floor(NX / side),
    r = cell / 2 - 3;
  for (let l = 0; l < count; l++) {
    const cx = (l % side) * cell + cell / 2,
      cy = Math.floor(l / side) * cell + cell / 2;
    const z0 = (l * 7) % (NZ - 60);
    for (let k = z0; k < z0 + 60; k++) {
      for (let j = Math.floor(cy - r); j <= cy + r; j++) {
        for (let i = Math.floor(cx - r); i <= cx + r; i++)
          if ((i - cx) ** 2 + (j - cy) ** 2 <= r * r) labels[k * NX * NY + j * NX + i] = l + 1;
      }
    }
  }
  return labels;
}

const labelMeta = (count: number): ModelLabel[] =>
  Array.from({ length: count }, (_, l) => ({
    value: l + 1,
    name: `organ ${l + 1}`,
    color: [(l * 37) % 256, (l * 91) % 256, (l * 53) % 256],
    category: { code: "123037004", scheme: "SCT", meaning: "Anatomical Structure" },
    type: { code: "10200004", scheme: "SCT", meaning: "Liver" },
    rtInterpretedType: "OAR",
  }));

const source: NaturalDataset = {
  PatientName: "Bench^Outputs",
  PatientID: "BENCH",
  StudyInstanceUID: "1.2.826.0.1.3680043.10.1",
  Modality: "CT",
};
const equipment = {
  manufacturer: "Delineate",
  modelName: "Delineate",
  deviceSerialNumber: "bench",
  softwareVersion: "bench",
};

/** One case, in this process: prints {seconds, inputsPeakMiB, peakMiB, bytes}. */
async function runCase(name: string): Promise<void> {
  const labelCount = name === "ours-rtstruct" ? 20 : 100;
  const volume = makeVolume();
  const labels = makeLabels(labelCount);
  const meta = labelMeta(labelCount);
  let datasets: NaturalDataset[] = [];
  if (name === "dcmjs-seg") {
    // dcmjs derives from the source images themselves, pixel data included, as a viewer holds them
    datasets = volume.slices.map((s, k) => ({
      SOPClassUID: SopClass.CTImageStorage,
      SOPInstanceUID: s.sopInstanceUID,
      StudyInstanceUID: volume.studyInstanceUID,
      SeriesInstanceUID: volume.seriesInstanceUID,
      FrameOfReferenceUID: volume.frameOfReferenceUID,
      Modality: "CT",
      PatientName: "Bench^Outputs",
      PatientID: "BENCH",
      Rows: NY,
      Columns: NX,
      PixelSpacing: [0.8, 0.8],
      SliceThickness: 1,
      ImageOrientationPatient: [1, 0, 0, 0, 1, 0],
      ImagePositionPatient: s.position,
      InstanceNumber: k + 1,
      SamplesPerPixel: 1,
      PhotometricInterpretation: "MONOCHROME2",
      BitsAllocated: 16,
      BitsStored: 16,
      HighBit: 15,
      PixelRepresentation: 1,
      PixelData: new Int16Array(NX * NY).buffer,
      _vrMap: { PixelData: "OW" },
      _meta: { TransferSyntaxUID: { Value: [TransferSyntax.ExplicitVRLittleEndian] } },
    }));
  }
  const inputsPeakMiB = hwmMiB();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let bytes: Uint8Array;
  if (name === "ours-seg") {
    const seg = buildSegmentation({
      volume,
      source,
      labels: { dims: volume.dims, data: labels },
      segmentLabels: meta,
      algorithm: { name: "bench", version: "1.0.0" },
      uids: {
        seriesInstanceUID: newUid("2.25"),
        sopInstanceUID: newUid("2.25"),
        dimensionOrganizationUID: newUid("2.25"),
      },
      series: { number: 1, description: "bench" },
      equipment,
      disclaimer: "",
      now: new Date(),
    });
    bytes = writePart10(seg.dataset);
  } else if (name === "ours-rtstruct") {
    bytes = writePart10(
      buildStructureSet({
        volume,
        source,
        labels: { dims: volume.dims, data: labels },
        segmentLabels: meta,
        algorithm: { name: "bench", version: "1.0.0" },
        uids: { seriesInstanceUID: newUid("2.25"), sopInstanceUID: newUid("2.25") },
        series: { number: 1, description: "bench" },
        equipment,
        disclaimer: "",
        now: new Date(),
      }),
    );
  } else {
    // dcmjs: one 2D label map per slice, each segment added from the slices where it is present
    const plane = NX * NY;
    const extents = meta.map((m) => {
      const frames: number[] = [];
      for (let k = 0; k < NZ; k++)
        if (labels.subarray(k * plane, (k + 1) * plane).includes(m.value)) frames.push(k + 1);
      return frames;
    });
    // as dcmjs's own adapters do: normalise the images into one multiframe dataset, derive the SEG from it
    const multiframe = (dcmjs as any).normalizers.Normalizer.normalizeToDataset(datasets);
    const seg = new (dcmjs as any).derivations.Segmentation([multiframe], { includeSliceSpacing: true });
    seg.setNumberOfFrames(extents.reduce((n, f) => n + f.length, 0));
    meta.forEach((m, i) => {
      const frames = extents[i]!;
      const segment = {
        SegmentedPropertyCategoryCodeSequence: {
          CodeValue: m.category.code,
          CodingSchemeDesignator: m.category.scheme,
          CodeMeaning: m.category.meaning,
        },
        SegmentNumber: i + 1,
        SegmentLabel: m.name,
        SegmentAlgorithmType: "AUTOMATIC",
        SegmentAlgorithmName: "bench",
        RecommendedDisplayCIELabValue: [0, 0, 0],
        SegmentedPropertyTypeCodeSequence: {
          CodeValue: m.type.code,
          CodingSchemeDesignator: m.type.scheme,
          CodeMeaning: m.type.meaning,
        },
      };
      seg.addSegmentFromLabelmap(
        segment,
        frames.map((f) => labels.subarray((f - 1) * plane, f * plane)),
        m.value,
        frames,
      );
    });
    seg.bitPackPixelData();
    bytes = new Uint8Array((dcmjs as any).data.datasetToBuffer(seg.dataset));
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const result = { seconds, cpuSeconds, inputsPeakMiB, peakMiB: hwmMiB(), bytes: bytes.byteLength };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function main(): Promise<void> {
  const caseArg = process.argv.indexOf("--case");
  if (caseArg > 0) return runCase(process.argv[caseArg + 1]!);
  const loadAverage = os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(", ");
  const profiles = tempDir("bench-outputs-");
  const beforeArg = process.argv.indexOf("--rtstruct-before");
  const before = beforeArg > 0 ? process.argv[beforeArg + 1] : undefined;
  const run = async (name: string, profile?: string, script = fileURLToPath(import.meta.url)) => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        "--max-old-space-size=16384",
        ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${path.join(profiles, profile)}`] : []),
        script,
        "--case",
        name,
      ],
      { maxBuffer: 1 << 20 },
    );
    const r = JSON.parse(stdout) as {
      seconds: number;
      cpuSeconds: number;
      inputsPeakMiB: number;
      peakMiB: number;
      bytes: number;
    };
    process.stderr.write(`${name}: ${JSON.stringify(r)}\n`);
    return { case: name, ...r, encodeMiB: r.peakMiB - r.inputsPeakMiB };
  };
  const results = [await run("ours-seg"), await run("dcmjs-seg"), await run("ours-rtstruct")];
  const [ours, theirs, rt] = results as [(typeof results)[number], (typeof results)[number], (typeof results)[number]];
  // the RTSTRUCT before a change and after it, alternately (the load moves in between): medians of three each
  type Run = (typeof results)[number];
  let rtstructBeforeAfter: { before: Run; after: Run; dir: string } | undefined;
  if (before) {
    const pairs: [Run, Run][] = [];
    for (let i = 0; i < 3; i++)
      pairs.push([
        {
          ...(await run("ours-rtstruct", undefined, path.join(before, "dist", "bench", "outputs.js"))),
          case: "before",
        },
        await run("ours-rtstruct"),
      ]);
    const median = (side: 0 | 1): Run => {
      const runs = pairs.map((p) => p[side]);
      const mid = (f: (r: Run) => number) => runs.map(f).sort((a, b) => a - b)[1]!;
      return {
        ...runs[0]!,
        seconds: mid((r) => r.seconds),
        cpuSeconds: mid((r) => r.cpuSeconds),
        peakMiB: mid((r) => r.peakMiB),
        encodeMiB: mid((r) => r.encodeMiB),
      };
    };
    rtstructBeforeAfter = { before: median(0), after: median(1), dir: before };
  }
  // where our encoders' time goes: one more run of each under --cpu-prof (inclusive time per group, first match)
  await run("ours-seg", "seg");
  await run("ours-rtstruct", "rtstruct");
  const segSplit = profileSplit(path.join(profiles, "seg"), {
    "bit packing (into the file's buffer)": ["packBinaryFrames"],
    "label extents": ["labelExtents"],
    "header and per-frame sequences (dcmjs, SequenceWriter)": ["writePart10"],
    "building the dataset": ["buildSegmentation"],
    "bench inputs (label map)": ["makeLabels", "makeVolume"],
  });
  const rtGroups = {
    // traceMask: d3-contour's marching squares before our own tracer (traceLabels)
    "contour tracing (traceLabels; before it, d3-contour in traceMask)": ["traceLabels", "traceMask"],
    "contour points to DS text": ["contourSequence"],
    "label boxes": ["labelBoxes"],
    "writing (dcmjs, SequenceWriter)": ["writePart10"],
    "bench inputs (label map)": ["makeLabels", "makeVolume"],
    "garbage collection": ["(garbage collector)"],
  };
  const rtSplit = profileSplit(path.join(profiles, "rtstruct"), rtGroups);
  if (before) await run("ours-rtstruct", "rtstruct-before", path.join(before, "dist", "bench", "outputs.js"));
  const rtBeforeSplit = before ? profileSplit(path.join(profiles, "rtstruct-before"), rtGroups) : undefined;
  const machine = machineFacts({ dcmjs: installedVersion("dcmjs") });
  mergeResults({
    outputs: {
      machine,
      loadAverage,
      results,
      speedup: theirs.seconds / ours.seconds,
      cpuSpeedup: theirs.cpuSeconds / ours.cpuSeconds,
      memoryRatio: theirs.encodeMiB / ours.encodeMiB,
      profileMs: { seg: segSplit, rtstruct: rtSplit },
      ...(rtstructBeforeAfter ? { rtstructBeforeAfter: { ...rtstructBeforeAfter, profileMs: rtBeforeSplit } } : {}),
    },
  });
  const row = (label: string, r: typeof ours, labels: number) =>
    `| ${label} | ${labels} | ${r.seconds.toFixed(2)} | ${r.cpuSeconds.toFixed(2)} | ${Math.round(r.peakMiB)} | ${Math.round(r.inputsPeakMiB)} | ${Math.round(r.encodeMiB)} | ${(r.bytes / 2 ** 20).toFixed(1)} |`;
  const md = [
    "# Benchmark: encoding outputs",
    "",
    "Written by `npm run bench:outputs` (bench/outputs.ts); do not edit by hand. A 512×512×300 label map (discs over 60",
    "slices each, staggered); each case in its own Node process. Peak is the process's VmHWM; inputs is the peak once",
    "the inputs were built (for dcmjs, the 300 source images with pixel data, which it derives from); encode = peak − inputs.",
    "",
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ${machine.os}; Node ${machine.node}; dcmjs ${machine.dcmjs}; ${machine.date}. Load average when it started: ${loadAverage}.`,
    "",
    "| encoder | labels | wall (s) | CPU, user + system (s) | peak RSS (MiB) | inputs (MiB) | encode (MiB) | file (MiB) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    row("Delineate SEG (buildSegmentation + writePart10)", ours, 100),
    row("dcmjs derivations.Segmentation (addSegmentFromLabelmap, bitPackPixelData, datasetToBuffer)", theirs, 100),
    row("Delineate RTSTRUCT (buildStructureSet + writePart10)", rt, 20),
    "",
    `SEG: Delineate is ${(theirs.seconds / ours.seconds).toFixed(1)}× faster than dcmjs in wall time (${(theirs.cpuSeconds / ours.cpuSeconds).toFixed(1)}× in CPU time) and uses ${(theirs.encodeMiB / ours.encodeMiB).toFixed(1)}× less memory to encode (targets: ≥ 5× faster, ≤ 250 MiB to encode; RTSTRUCT ≤ 1 s).`,
    "",
    `Where our SEG's time goes (one more run under \`node --cpu-prof\`, inclusive ms): ${splitText(segSplit)}.`,
    "",
    `Where our RTSTRUCT's time goes: ${splitText(rtSplit)}.`,
    "",
    ...(rtstructBeforeAfter
      ? [
          `RTSTRUCT before and after, in this run (\`--rtstruct-before ${rtstructBeforeAfter.dir}\`; alternately, three runs each, medians): before ${rtstructBeforeAfter.before.seconds.toFixed(2)} s wall, ${rtstructBeforeAfter.before.cpuSeconds.toFixed(2)} s CPU, ${Math.round(rtstructBeforeAfter.before.peakMiB)} MiB peak; after ${rtstructBeforeAfter.after.seconds.toFixed(2)} s wall, ${rtstructBeforeAfter.after.cpuSeconds.toFixed(2)} s CPU, ${Math.round(rtstructBeforeAfter.after.peakMiB)} MiB peak (${(rtstructBeforeAfter.before.cpuSeconds / rtstructBeforeAfter.after.cpuSeconds).toFixed(1)}× less CPU).`,
          "",
          `Where the RTSTRUCT's time went before (same run, one more run under \`--cpu-prof\`): ${splitText(rtBeforeSplit ?? {})}.`,
          "",
        ]
      : []),
  ].join("\n");
  writeFileSync(path.join(ROOT, "bench", "OUTPUTS.md"), md);
  process.stdout.write(md);
}

runBench(main);
