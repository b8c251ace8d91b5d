/**
 * `npm run bench:memory`: peak memory of segmenting a 512×512×300 CT with a 100-label model. The network is small
 * (two convolutions, 101 output channels: the cost under test is the engine's handling of 101 classes, not the
 * network); the algorithm is the usual one (resample to 1.5 mm, 128³ tiles at overlap 0.5, Gaussian blending,
 * softmax, probabilities back to the source grid, argmax). Each run is its own process, so its peak resident set is
 * its own: at the same time, once with the exact float32 band (under `node --cpu-prof`, for where the time goes), once with the
 * float16 band, and their label maps compared voxel by voxel. Writes bench/MEMORY.md and the "memory" entry of
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

/** The child: one segmentation with the given band accumulator, its labels written to `labelsOut`, then its figures as a JSON line. */
async function child(onnx: string, accumulator: "float32" | "float16", labelsOut: string): Promise<void> {
  const [nx, ny, nz] = DIMS;
  const data = ellipticalBody([nx, ny, nz], (i, j, k) => 40 + ((i * 7 + j * 13 + k * 3) % 200) - 100);
  const session = await ort.InferenceSession.create(onnx, {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
  });
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
    `${JSON.stringify({ seconds, networkSeconds, peakRssMiB: process.resourceUsage().maxRSS / 1024, labelValuesFound: used })}\n`,
  );
}

interface ChildRun {
  seconds: number;
  networkSeconds: number;
  peakRssMiB: number;
  labelValuesFound: number;
}

/** One child process; the two run at once (each has its own peak), so that their seconds share the machine's load. */
async function runChild(
  onnx: string,
  accumulator: "float32" | "float16",
  labelsOut: string,
  nodeArgs: string[],
): Promise<ChildRun> {
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [...nodeArgs, fileURLToPath(import.meta.url), "--child", onnx, accumulator, labelsOut],
      { encoding: "utf8", maxBuffer: 1 << 20 },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    ),
  );
  return JSON.parse(out.trim().split("\n").at(-1)!) as ChildRun;
}

async function main(): Promise<void> {
  const work = tempDir("bench-memory-");
  const onnx = path.join(work, "model.onnx");
  await exec("/usr/bin/python3", ["-c", NETWORK, onnx]);
  const profileDir = path.join(work, "profile");
  const [exact, half] = await Promise.all([
    runChild(onnx, "float32", path.join(work, "labels32"), ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]),
    runChild(onnx, "float16", path.join(work, "labels16"), []),
  ]);
  const a = readFileSync(path.join(work, "labels32")),
    b = readFileSync(path.join(work, "labels16"));
  let labelsDiffering = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) labelsDiffering++;
  const run = exact;

  const source = DIMS[0] * DIMS[1] * DIMS[2];
  const model = DIMS.map((n, a) => Math.round((n * SPACING[a]!) / 1.5));
  const modelVoxels = model[0]! * model[1]! * model[2]!;
  const classes = LABELS + 1;
  const tile = 128 ** 3;
  const result = {
    volume: `${DIMS.join("×")} at ${SPACING.join("×")} mm`,
    modelGrid: model.join("×"),
    classes,
    seconds: run.seconds,
    networkSeconds: run.networkSeconds,
    peakRssMiB: Math.round(run.peakRssMiB),
    labelValuesFound: run.labelValuesFound,
    float16: {
      seconds: half.seconds,
      networkSeconds: half.networkSeconds,
      peakRssMiB: Math.round(half.peakRssMiB),
      labelsDiffering,
      voxels: a.length,
    },
    // where the float32 run's time went: self time by function, from node --cpu-prof (onnxruntime's run shows as the function that called it)
    profile: cpuProfileSplit(profileDir),
    // what cannot go: one tile's logits as onnxruntime returns them, held by onnxruntime and copied into JS
    tileLogitsMiB: Math.round((classes * tile * 4) / MiB),
    bandFloat32MiB: Math.round((classes * 128 * model[0]! * model[1]! * 4) / MiB),
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
    "Peak resident set of the process that did only this; once with the exact float32 band of blended logits (the",
    'default) and once with `inference.accumulator: "float16"`, each its own process, in the same run.',
    "",
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ${machine.os}; Node ${machine.node}; onnxruntime-node ${machine.onnxruntime}; ${machine.date}.`,
    "",
    "| | MiB |",
    "| --- | --- |",
    `| **peak resident set, float32 band (exact)** | **${result.peakRssMiB.toLocaleString("en")}** |`,
    `| **peak resident set, float16 band** | **${result.float16.peakRssMiB.toLocaleString("en")}** |`,
    `| one tile's logits (101 × 128³ float32): held by onnxruntime, then copied into JS, so twice at the peak | ${result.tileLogitsMiB.toLocaleString("en")} |`,
    `| the band of blended logits, float32 (101 classes × 128 slices × the model plane; half in float16) | ${result.bandFloat32MiB.toLocaleString("en")} |`,
    `| the CT volume itself (float32) | ${result.volumeMiB.toLocaleString("en")} |`,
    `| every class's probabilities on the model grid ${result.modelGrid}, at once (not held) | ${result.wholeModelGridProbabilitiesMiB.toLocaleString("en")} |`,
    `| every class's probabilities on the source grid, at once (not held) | ${result.wholeSourceGridProbabilitiesMiB.toLocaleString("en")} |`,
    "",
    `float32: ${result.seconds.toFixed(1)} s (${result.networkSeconds.toFixed(1)} s in onnxruntime); float16: ${half.seconds.toFixed(1)} s (${half.networkSeconds.toFixed(1)} s in onnxruntime).`,
    `${result.labelValuesFound} distinct label values; **${labelsDiffering} of ${a.length.toLocaleString("en")} voxels' labels differ** between the two.`,
    "",
    "Where the float32 run's time went (self time, `node --cpu-prof`):",
    "",
    "| function | s | share |",
    "| --- | --- | --- |",
    ...result.profile.map((p) => `| ${p.function} | ${p.seconds.toFixed(1)} | ${(p.share * 100).toFixed(0)} % |`),
    "",
    "Why it stays bounded: tiles go band by band along z and the slices below a new band are final, so they are",
    "divided, softmaxed and handed on (src/inference/slidingWindow.ts); the accumulators hold one patch's depth of",
    "slices. Each source slice is labelled as soon as the two model slices around it have come, and model slices no",
    "longer needed are let go (`SourceLabeller` in src/inference/segmentVolume.ts). What remains is one band of",
    "accumulated logits (101 classes × 128 slices of the model grid's plane) and one tile's logits from the network.",
    "",
    "Why not 2 GB: the two rows above are the floor with 128³ tiles and 101 classes through onnxruntime-node. A tile's",
    "logits exist twice at once (onnxruntime's output, and the JS copy the binding makes; it does not write into a",
    "preallocated output on the CPU), and the band must hold every class for the slices that the next row of tiles",
    "still reaches (at overlap 0.5, half a patch of the whole plane at the least, whatever the tile order). The float16",
    "band halves the second; the first would need the network to return float16 (a Cast in the exported model) or",
    "smaller tiles (other outputs).",
    "",
  ];
  writeFileSync(path.join(ROOT, "bench", "MEMORY.md"), md.join("\n"));
  process.stdout.write(md.join("\n"));
}

if (process.argv[2] === "--child")
  runBench(() => child(process.argv[3]!, process.argv[4] as "float32" | "float16", process.argv[5]!));
else runBench(main);
