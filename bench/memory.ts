/**
 * `npm run bench:memory`: peak memory of segmenting a 512×512×300 CT with a 100-label model. The network is small
 * (two convolutions, 101 output channels: the cost under test is the engine's handling of 101 classes, not the
 * network); the algorithm is the usual one (resample to 1.5 mm, 128³ tiles at overlap 0.5, Gaussian blending,
 * softmax, probabilities back to the source grid, argmax). Each run is its own process, so its peak resident set is
 * its own: once with the exact float32 accumulators (under `node --cpu-prof`, for where the time goes), beside an
 * older build's float32 run when `--before DIR` names one, then once with float16 accumulators; the label maps are
 * compared voxel by voxel. Writes bench/MEMORY.md and the "memory" entry of
 * bench/results.json.
 */

import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ort from "onnxruntime-node";
import { tempDir } from "../harness/tempDir.js";
import { exec, ROOT } from "../harness/tools.js";
import { segmentVolume } from "../src/inference/segmentVolume.js";
import { type Dims, mostRowsHeld } from "../src/inference/slidingWindow.js";
import { ManifestSchema } from "../src/models/manifest.js";
import { cpuProfileSplit, installedVersion, machineFacts, mergeResults, runBench } from "./record.js";
import { benchManifestJson, ellipticalBody } from "./synthetic.js";

const DIMS: [number, number, number] = [512, 512, 300];
const SPACING: [number, number, number] = [0.8, 0.8, 1.5];
const LABELS = 100;
const MiB = 2 ** 20;

const NETWORK = `
import sys, torch
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv3d(1, 8, 3, padding=1), torch.nn.LeakyReLU(0.01), torch.nn.Conv3d(8, ${LABELS + 1}, 1)).eval()
torch.onnx.export(net, torch.zeros(1, 1, 16, 16, 16), sys.argv[1], opset_version=17, input_names=["image"], output_names=["logits"],
                  dynamic_axes={"image": {0: "n", 2: "z", 3: "y", 4: "x"}, "logits": {0: "n", 2: "z", 3: "y", 4: "x"}})
`;

const manifest = ManifestSchema.parse(
  benchManifestJson(
    "bench-100",
    "100 labels",
    1,
    Array.from({ length: LABELS }, (_, i) => ({ value: i + 1, name: `label ${i + 1}`, color: [i, 255 - i, 128] })),
  ),
);

/** The child: one segmentation with the given accumulator, its labels written to `labelsOut`, then its figures as a JSON line. */
async function child(onnx: string, accumulator: "float32" | "float16", labelsOut: string): Promise<void> {
  const [nx, ny, nz] = DIMS;
  const rss = () => process.memoryUsage().rss / MiB;
  const startRssMiB = rss();
  const data = ellipticalBody([nx, ny, nz], (i, j, k) => 40 + ((i * 7 + j * 13 + k * 3) % 200) - 100);
  const session = await ort.InferenceSession.create(onnx, {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
  });
  const sessionRssMiB = rss();
  // the network's share of the time: every call to onnxruntime, timed
  let networkSeconds = 0;
  const run = session.run.bind(session);
  session.run = (async (...args: Parameters<typeof run>) => {
    const t = performance.now();
    const out = await run(...args);
    networkSeconds += (performance.now() - t) / 1000;
    return out;
  }) as typeof session.run;
  const t0 = performance.now();
  const labels = await segmentVolume(
    {
      dims: DIMS,
      spacing: SPACING,
      direction: [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ],
      data,
      seriesInstanceUID: "bench",
    },
    { ...manifest, inference: { ...manifest.inference, accumulator } },
    [session],
  );
  const seconds = (performance.now() - t0) / 1000;
  const used = new Set(labels.data).size;
  writeFileSync(labelsOut, labels.data);
  process.stdout.write(
    `${JSON.stringify({ seconds, networkSeconds, peakRssMiB: process.resourceUsage().maxRSS / 1024, startRssMiB, sessionRssMiB, labelValuesFound: used })}\n`,
  );
}

interface ChildRun {
  seconds: number;
  networkSeconds: number;
  peakRssMiB: number;
  /** resident set of the bare process, and with the CT made and the session loaded (the older build does not say) */
  startRssMiB?: number;
  sessionRssMiB?: number;
  labelValuesFound: number;
}

/** One child process; the two run at once (each has its own peak), so that their seconds share the machine's load. */
async function runChild(
  onnx: string,
  accumulator: "float32" | "float16",
  labelsOut: string,
  nodeArgs: string[],
  script = fileURLToPath(import.meta.url),
): Promise<ChildRun> {
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [...nodeArgs, script, "--child", onnx, accumulator, labelsOut],
      { encoding: "utf8", maxBuffer: 1 << 20 },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    ),
  );
  return JSON.parse(out.trim().split("\n").at(-1)!) as ChildRun;
}

/** Voxels whose labels differ between two label files. */
function labelsDiffering(a: string, b: string): { differing: number; voxels: number } {
  const x = readFileSync(a),
    y = readFileSync(b);
  let differing = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) differing++;
  return { differing, voxels: x.length };
}

/**
 * `--before DIR`: DIR holds a build of an older commit (its dist/bench/memory.js); its float32 child runs beside
 * this build's, in the same run, and their labels are compared. The float16 child runs after those two, alone, so
 * that three peaks of several GB are never resident at once on a shared machine.
 */
async function main(): Promise<void> {
  const beforeAt = process.argv.indexOf("--before");
  const beforeDir = beforeAt > 0 ? path.resolve(process.argv[beforeAt + 1]!) : undefined;
  const work = tempDir("bench-memory-");
  const onnx = path.join(work, "model.onnx");
  await exec("/usr/bin/python3", ["-c", NETWORK, onnx]);
  const profileDir = path.join(work, "profile");
  const labels32 = path.join(work, "labels32"),
    labels16 = path.join(work, "labels16"),
    labelsBefore = path.join(work, "labelsBefore");
  const [exact, before] = await Promise.all([
    runChild(onnx, "float32", labels32, ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]),
    beforeDir
      ? runChild(onnx, "float32", labelsBefore, [], path.join(beforeDir, "dist", "bench", "memory.js"))
      : undefined,
  ]);
  const half = await runChild(onnx, "float16", labels16, []);
  const { differing: labelsDiffer, voxels } = labelsDiffering(labels32, labels16);
  const beforeDiffer = before ? labelsDiffering(labels32, labelsBefore).differing : undefined;
  const run = exact;
  // what the older build is: a line in DIR/BUILD, written by whoever made it (a commit, say)
  const beforeName = beforeDir
    ? (() => {
        try {
          return readFileSync(path.join(beforeDir, "BUILD"), "utf8").trim();
        } catch {
          return beforeDir;
        }
      })()
    : undefined;

  const source = DIMS[0] * DIMS[1] * DIMS[2];
  const model = DIMS.map((n, a) => Math.round((n * SPACING[a]!) / 1.5)) as Dims;
  const modelVoxels = model[0] * model[1] * model[2];
  const classes = LABELS + 1;
  const patch: Dims = [128, 128, 128];
  const tile = 128 ** 3;
  // the accumulators at their largest: rows (y, z) of the model grid held at once, each classes + 1 floats by x
  const rowsHeld = mostRowsHeld(model, patch, 0.5);
  const rowMiB = (bytesPerClass: number, weightBytes: number) =>
    (model[0] * (classes * bytesPerClass + weightBytes)) / MiB;
  const mib = (n: number) => Math.round(n).toLocaleString("en");
  const result = {
    volume: `${DIMS.join("×")} at ${SPACING.join("×")} mm`,
    modelGrid: model.join("×"),
    classes,
    seconds: run.seconds,
    networkSeconds: run.networkSeconds,
    peakRssMiB: Math.round(run.peakRssMiB),
    startRssMiB: Math.round(run.startRssMiB ?? 0),
    sessionRssMiB: Math.round(run.sessionRssMiB ?? 0),
    labelValuesFound: run.labelValuesFound,
    float16: {
      seconds: half.seconds,
      networkSeconds: half.networkSeconds,
      peakRssMiB: Math.round(half.peakRssMiB),
      labelsDiffering: labelsDiffer,
      voxels,
    },
    before: before && {
      build: beforeName,
      seconds: before.seconds,
      networkSeconds: before.networkSeconds,
      peakRssMiB: Math.round(before.peakRssMiB),
      labelsDifferingFromAfter: beforeDiffer,
    },
    // where the float32 run's time went: self time by function, from node --cpu-prof (onnxruntime's run shows as the function that called it)
    profile: cpuProfileSplit(profileDir),
    // what cannot go: one tile's logits as onnxruntime returns them, held by onnxruntime and copied into JS
    tileLogitsMiB: Math.round((classes * tile * 4) / MiB),
    // whole slices, one patch deep (before), against the rows held at once (after)
    wholeSliceBandFloat32MiB: Math.round(128 * model[1] * rowMiB(4, 4)),
    rowsHeld,
    rowBandFloat32MiB: Math.round(rowsHeld * rowMiB(4, 4)),
    rowBandFloat16MiB: Math.round(rowsHeld * rowMiB(2, 4)),
    volumeMiB: Math.round((source * 4) / MiB),
    // what holding every class's probabilities at once would take, float32
    wholeModelGridProbabilitiesMiB: Math.round((classes * modelVoxels * 4) / MiB),
    wholeSourceGridProbabilitiesMiB: Math.round((classes * source * 4) / MiB),
  };
  const machine = machineFacts({ onnxruntime: installedVersion("onnxruntime-node") });
  mergeResults({ memory: { machine, result } });
  const md = [
    "# Benchmark: memory with a 100-label model",
    "",
    "Written by `npm run bench:memory` (bench/memory.ts); do not edit by hand. A 512×512×300 CT (0.8×0.8×1.5 mm, float32)",
    "segmented by a 101-class network (two convolutions: the classes are what is measured) through the engine: resampling to",
    "1.5 mm, 128³ tiles at overlap 0.5 with Gaussian blending, softmax, probabilities back to the source grid, argmax.",
    "Peak resident set of the process that did only this; with the exact float32 accumulators (the default) and with",
    '`inference.accumulator: "float16"`, each its own process, in the same run' +
      (before ? "; and the float32 run of an older build beside this build's, at the same time." : "."),
    "",
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ${machine.os}; Node ${machine.node}; onnxruntime-node ${machine.onnxruntime}; ${machine.date}.`,
    "",
    "| | MiB |",
    "| --- | --- |",
    ...(before
      ? [
          `| peak resident set, float32, before (${beforeName}: whole slices, one patch deep) | ${mib(before.peakRssMiB)} |`,
        ]
      : []),
    `| **peak resident set, float32 (exact)** | **${mib(result.peakRssMiB)}** |`,
    `| **peak resident set, float16** | **${mib(result.float16.peakRssMiB)}** |`,
    `| the process with the CT made and the session loaded, before inference (float32 run) | ${mib(result.sessionRssMiB)} |`,
    `| one tile's logits (101 × 128³ float32): held by onnxruntime, then copied into JS, so twice at the peak | ${mib(result.tileLogitsMiB)} |`,
    `| accumulated logits before: 128 whole slices of the model plane, float32 (101 classes and the weights) | ${mib(result.wholeSliceBandFloat32MiB)} |`,
    `| accumulated logits now: at most ${rowsHeld.toLocaleString("en")} rows of the model grid at once, float32 | ${mib(result.rowBandFloat32MiB)} |`,
    `| the same rows with float16 means (weights float32) | ${mib(result.rowBandFloat16MiB)} |`,
    `| the CT volume itself (float32) | ${mib(result.volumeMiB)} |`,
    `| every class's probabilities on the model grid ${result.modelGrid}, at once (not held) | ${mib(result.wholeModelGridProbabilitiesMiB)} |`,
    `| every class's probabilities on the source grid, at once (not held) | ${mib(result.wholeSourceGridProbabilitiesMiB)} |`,
    "",
    `float32: ${result.seconds.toFixed(1)} s (${result.networkSeconds.toFixed(1)} s in onnxruntime)` +
      (before
        ? `, before: ${before.seconds.toFixed(1)} s (${before.networkSeconds.toFixed(1)} s), at the same time`
        : "") +
      `; float16: ${half.seconds.toFixed(1)} s (${half.networkSeconds.toFixed(1)} s in onnxruntime), alone after them.`,
    `${result.labelValuesFound} distinct label values; **${labelsDiffer} of ${voxels.toLocaleString("en")} voxels' labels differ** between float32 and float16` +
      (before ? `; **${beforeDiffer} differ** between this build's float32 and the older build's.` : "."),
    "",
    "Where the float32 run's time went (self time, `node --cpu-prof`):",
    "",
    "| function | s | share |",
    "| --- | --- | --- |",
    ...result.profile.map((p) => `| ${p.function} | ${p.seconds.toFixed(1)} | ${(p.share * 100).toFixed(0)} % |`),
    "",
    "Why it stays bounded: the blended sums are kept per row (y, z) of the model grid, and a row is final as soon as the",
    "last tile that reaches it has been blended (tiles go z, then y, then x); it is divided, softmaxed and handed on",
    "(src/inference/slidingWindow.ts). Each source row is labelled as soon as the four model rows it lies between have",
    "come, and model rows no longer needed are let go (`SourceLabeller` in src/inference/segmentVolume.ts). Each voxel's",
    "sum takes its tiles in the same order as when whole slices were finished, so the float32 logits are the same to",
    "the bit.",
    "",
    "Why not 2 GB: a tile's logits exist twice at once (onnxruntime's output, and the JS copy the binding makes; it",
    "does not write into a preallocated output on the CPU without copying it again), and the accumulators must hold",
    "every class for the rows that the next band of tiles still reaches (at overlap 0.5, over half a patch of whole",
    "slices, whatever the order of the tiles). docs/inference.md says what would reach 2 GB.",
    "",
  ];
  writeFileSync(path.join(ROOT, "bench", "MEMORY.md"), md.join("\n"));
  process.stdout.write(md.join("\n"));
}

if (process.argv[2] === "--child")
  runBench(() => child(process.argv[3]!, process.argv[4] as "float32" | "float16", process.argv[5]!));
else runBench(main);
