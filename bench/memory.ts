/**
 * `npm run bench:memory`: peak memory of segmenting a 512×512×300 CT with a 100-label model. The network is small
 * (two convolutions, 101 output channels: the cost under test is the engine's handling of 101 classes, not the
 * network); the algorithm is the usual one (resample to 1.5 mm, 128³ tiles at overlap 0.5, Gaussian blending,
 * softmax, probabilities back to the source grid, argmax). Each run is its own process, so its peak resident set is
 * its own: the engine as it runs by default (the network's last 1×1×1 convolution split off, its 8 features blended;
 * float32, under `node --cpu-prof`, for where the time goes) beside the same build with `inference.headSplit: false`
 * (the whole network, 101 logits blended: the engine before the split, whose code path is unchanged), at the same
 * time; then the split with float16 accumulators, alone. The label maps are compared voxel by voxel. Writes
 * bench/MEMORY.md and the "memory" entry of bench/results.json.
 */

import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ort from "onnxruntime-node";
import { tempDir } from "../harness/tempDir.js";
import { exec, ROOT } from "../harness/tools.js";
import { splitHead } from "../src/inference/headSplit.js";
import { axisWeights } from "../src/inference/resample.js";
import { modelGrid, modelGridRows, segmentVolume } from "../src/inference/segmentVolume.js";
import { type Dims, mostRowsHeld } from "../src/inference/slidingWindow.js";
import type { Network } from "../src/inference/tilePredictor.js";
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

type Head = "split" | "whole";

const DIRECTION = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
] as [[number, number, number], [number, number, number], [number, number, number]];

/** The CT every child segments. */
const benchVolume = () =>
  ellipticalBody([DIMS[0], DIMS[1], DIMS[2]], (i, j, k) => 40 + ((i * 7 + j * 13 + k * 3) % 200) - 100);

/** The network's session, split (as createSession makes it, src/inference/session.ts) or whole, with the session options this bench always used. */
async function benchSession(
  onnx: string,
  head: Head,
): Promise<{ session: ort.InferenceSession; network: Network; features?: number }> {
  const split = head === "split" ? splitHead(readFileSync(onnx)) : undefined;
  if (head === "split" && !split) throw new Error("the bench's network did not split");
  const options = { executionProviders: ["cpu"], graphOptimizationLevel: "all" } as const;
  if (!split) {
    const session = await ort.InferenceSession.create(onnx, options);
    return { session, network: session };
  }
  const session = await ort.InferenceSession.create(split.onnx, options);
  return {
    session,
    network: { session, split: { featureOutput: split.featureOutput, head: split.head } },
    features: split.head.features,
  };
}

const benchManifest = (accumulator: "float32" | "float16", head: Head) => ({
  ...manifest,
  inference: { ...manifest.inference, accumulator, headSplit: head === "split" },
});

/** The child: one segmentation with the given accumulator, split or whole, its labels written to `labelsOut`, then its figures as a JSON line. */
async function child(onnx: string, accumulator: "float32" | "float16", head: Head, labelsOut: string): Promise<void> {
  const rss = () => process.memoryUsage().rss / MiB;
  const startRssMiB = rss();
  const data = benchVolume();
  const { session, network, features } = await benchSession(onnx, head);
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
    { dims: DIMS, spacing: SPACING, direction: DIRECTION, data, seriesInstanceUID: "bench" },
    benchManifest(accumulator, head),
    [network],
  );
  const seconds = (performance.now() - t0) / 1000;
  const used = new Set(labels.data).size;
  writeFileSync(labelsOut, labels.data);
  process.stdout.write(
    `${JSON.stringify({ seconds, networkSeconds, peakRssMiB: process.resourceUsage().maxRSS / 1024, startRssMiB, sessionRssMiB, labelValuesFound: used, features })}\n`,
  );
}

/**
 * The probe child: at the source voxels listed in `voxelsFile` (JSON, voxel indices), every class's probability as
 * the labeller interpolates it (float32 along z, then doubles along x and y: SourceLabeller's arithmetic), from the
 * model rows around them, kept as they stream by; prints the two best classes and their probabilities per voxel.
 */
async function probe(onnx: string, head: Head, voxelsFile: string): Promise<void> {
  const voxels = JSON.parse(readFileSync(voxelsFile, "utf8")) as number[];
  const m = benchManifest("float32", head);
  const record = modelGrid(DIMS, SPACING, m);
  const [sx, sy, sz] = DIMS;
  const [mx, my, mz] = record.modelDims;
  const wx = axisWeights(mx, sx),
    wy = axisWeights(my, sy),
    wz = axisWeights(mz, sz);
  const at = voxels.map((v) => ({ i: v % sx, j: Math.floor(v / sx) % sy, k: Math.floor(v / (sx * sy)) }));
  const wanted = new Set(
    at.flatMap(({ j, k }) => [wz.i0[k]!, wz.i1[k]!].flatMap((z) => [wy.i0[j]!, wy.i1[j]!].map((y) => z * my + y))),
  );
  const rows = new Map<number, Float32Array>();
  const { network } = await benchSession(onnx, head);
  await modelGridRows(
    { dims: DIMS, spacing: SPACING, data: benchVolume(), seriesInstanceUID: "bench" },
    m,
    [network],
    (z, y, p) => {
      if (wanted.has(z * my + y)) rows.set(z * my + y, Float32Array.from(p));
    },
  );
  const classes = LABELS + 1;
  const zRow = new Float32Array(2);
  const out = at.map(({ i, j, k }, n) => {
    const p = Array.from({ length: classes }, (_, c) => {
      const xRow = [wy.i0[j]!, wy.i1[j]!].map((y) => {
        const r0 = rows.get(wz.i0[k]! * my + y)!,
          r1 = rows.get(wz.i1[k]! * my + y)!,
          w = wz.w1[k]!;
        [wx.i0[i]!, wx.i1[i]!].forEach((x, e) => {
          zRow[e] = r0[c * mx + x]! * (1 - w) + r1[c * mx + x]! * w;
        });
        const u = wx.w1[i]!;
        return zRow[0]! * (1 - u) + zRow[1]! * u;
      });
      const v = wy.w1[j]!;
      return xRow[0]! * (1 - v) + xRow[1]! * v;
    });
    // the labeller's choice: classes in order, each kept if above the best so far, which is stored as float32
    let best = -1,
      label = 0;
    p.forEach((q, c) => {
      if (q > best) {
        best = Math.fround(q);
        label = c;
      }
    });
    return { voxel: voxels[n]!, label, p };
  });
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

interface ChildRun {
  seconds: number;
  networkSeconds: number;
  peakRssMiB: number;
  /** resident set of the bare process, and with the CT made and the session loaded */
  startRssMiB: number;
  sessionRssMiB: number;
  labelValuesFound: number;
  /** what goes into the split-off head per voxel */
  features?: number;
}

/** One child process; two run at once (each has its own peak), so that their seconds share the machine's load. */
async function runChild(
  onnx: string,
  accumulator: "float32" | "float16",
  head: Head,
  labelsOut: string,
  nodeArgs: string[],
): Promise<ChildRun> {
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [...nodeArgs, fileURLToPath(import.meta.url), "--child", onnx, accumulator, head, labelsOut],
      { encoding: "utf8", maxBuffer: 1 << 20 },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    ),
  );
  return JSON.parse(out.trim().split("\n").at(-1)!) as ChildRun;
}

/** Voxels whose labels differ between two label files, and the first 100 of them. */
function labelsDiffering(a: string, b: string): { differing: number; voxels: number; first: number[] } {
  const x = readFileSync(a),
    y = readFileSync(b);
  let differing = 0;
  const first: number[] = [];
  for (let i = 0; i < x.length; i++)
    if (x[i] !== y[i]) {
      differing++;
      if (first.length < 100) first.push(i);
    }
  return { differing, voxels: x.length, first };
}

interface Probed {
  voxel: number;
  /** the class the labeller's rule picks from these probabilities */
  label: number;
  /** every class's probability there */
  p: number[];
}

/** A probe child (see probe): the two best classes at the given voxels, split or whole. */
async function runProbe(onnx: string, head: Head, voxelsFile: string): Promise<Probed[]> {
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [fileURLToPath(import.meta.url), "--probe", onnx, head, voxelsFile],
      { encoding: "utf8", maxBuffer: 1 << 24 },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    ),
  );
  return JSON.parse(out.trim().split("\n").at(-1)!) as Probed[];
}

/**
 * The split and the whole network (float32) at the same time, so that their seconds share the machine's load; then
 * the split with float16 accumulators alone, so that two peaks of several GB are never resident beside a third on a
 * shared machine.
 */
async function main(): Promise<void> {
  const work = tempDir("bench-memory-");
  const onnx = path.join(work, "model.onnx");
  await exec("/usr/bin/python3", ["-c", NETWORK, onnx]);
  const profileDir = path.join(work, "profile");
  const labelsSplit = path.join(work, "labelsSplit"),
    labelsWhole = path.join(work, "labelsWhole"),
    labels16 = path.join(work, "labels16");
  const [run, whole] = await Promise.all([
    runChild(onnx, "float32", "split", labelsSplit, ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]),
    runChild(onnx, "float32", "whole", labelsWhole, []),
  ]);
  const half = await runChild(onnx, "float16", "split", labels16, []);
  const splitVsWhole = labelsDiffering(labelsSplit, labelsWhole);
  const halfVsWhole = labelsDiffering(labels16, labelsWhole).differing;
  const halfVsSplit = labelsDiffering(labels16, labelsSplit).differing;
  const voxels = splitVsWhole.voxels;
  // where split and whole disagree: both runs' two best classes there, from the model rows around each voxel
  const probeFile = path.join(work, "differing.json");
  writeFileSync(probeFile, JSON.stringify(splitVsWhole.first));
  const [probeSplit, probeWhole]: [Probed[], Probed[]] = splitVsWhole.first.length
    ? await Promise.all([runProbe(onnx, "split", probeFile), runProbe(onnx, "whole", probeFile)]).catch(
        (err: unknown): [Probed[], Probed[]] => {
          process.stderr.write(`bench:memory: the probes failed (the page is written without them): ${err}\n`);
          return [[], []];
        },
      )
    : [[], []];
  const labelsSplitData = readFileSync(labelsSplit),
    labelsWholeData = readFileSync(labelsWhole);
  // the probes must give the labels the runs gave, or their margins say nothing about those runs
  const probesAgree =
    probeSplit.every((q) => labelsSplitData[q.voxel] === q.label) &&
    probeWhole.every((q) => labelsWholeData[q.voxel] === q.label);
  // by how much each run prefers its own label to the other run's there, in its own probabilities
  const preference = probeSplit.flatMap((a, n) => {
    const b = probeWhole[n]!;
    return [a.p[a.label]! - a.p[b.label]!, b.p[b.label]! - b.p[a.label]!];
  });
  const widestPreference = Math.max(0, ...preference);
  const bestProbability = probeWhole.map((q) => q.p[q.label]!);
  // the spacing of float32 values around x
  const ulp = (x: number) => 2 ** (Math.floor(Math.log2(x)) - 23);

  const source = DIMS[0] * DIMS[1] * DIMS[2];
  const model = DIMS.map((n, a) => Math.round((n * SPACING[a]!) / 1.5)) as Dims;
  const modelVoxels = model[0] * model[1] * model[2];
  const classes = LABELS + 1;
  const features = run.features ?? 0;
  const patch: Dims = [128, 128, 128];
  const tile = 128 ** 3;
  // the accumulators at their largest: rows (y, z) of the model grid held at once, each channels + 1 floats by x
  const rowsHeld = mostRowsHeld(model, patch, 0.5);
  const rowMiB = (channels: number, bytesPerChannel: number, weightBytes: number) =>
    (model[0] * (channels * bytesPerChannel + weightBytes)) / MiB;
  const mib = (n: number) => Math.round(n).toLocaleString("en");
  const result = {
    volume: `${DIMS.join("×")} at ${SPACING.join("×")} mm`,
    modelGrid: model.join("×"),
    classes,
    features,
    seconds: run.seconds,
    networkSeconds: run.networkSeconds,
    peakRssMiB: Math.round(run.peakRssMiB),
    startRssMiB: Math.round(run.startRssMiB),
    sessionRssMiB: Math.round(run.sessionRssMiB),
    labelValuesFound: run.labelValuesFound,
    // the same build with inference.headSplit false: the whole network, every class blended (the engine before the split)
    whole: {
      seconds: whole.seconds,
      networkSeconds: whole.networkSeconds,
      peakRssMiB: Math.round(whole.peakRssMiB),
      labelValuesFound: whole.labelValuesFound,
      labelsDifferingFromSplit: splitVsWhole.differing,
      // at those voxels (the first 100): the best class's probability less the second's, in each run
      differing: {
        probed: probeSplit.length,
        probesGiveTheRunsLabels: probesAgree,
        widestPreference,
        probabilityOfBest: bestProbability,
      },
    },
    float16: {
      seconds: half.seconds,
      networkSeconds: half.networkSeconds,
      peakRssMiB: Math.round(half.peakRssMiB),
      labelsDifferingFromWhole: halfVsWhole,
      labelsDifferingFromSplit: halfVsSplit,
      voxels,
    },
    // where the split float32 run's time went: self time by function, from node --cpu-prof (onnxruntime's run shows as the function that called it)
    profile: cpuProfileSplit(profileDir),
    // one tile's network output as onnxruntime returns it, held by onnxruntime and copied into JS: whole, and split
    tileLogitsMiB: Math.round((classes * tile * 4) / MiB),
    tileFeaturesMiB: Math.round((features * tile * 4) / MiB),
    rowsHeld,
    rowBandLogitsFloat32MiB: Math.round(rowsHeld * rowMiB(classes, 4, 4)),
    rowBandFeaturesFloat32MiB: Math.round(rowsHeld * rowMiB(features, 4, 4)),
    rowBandFeaturesFloat16MiB: Math.round(rowsHeld * rowMiB(features, 2, 4)),
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
    `segmented by a 101-class network (a 3×3×3 convolution to ${features} features, then a 1×1×1 convolution to the classes:`,
    "the classes are what is measured) through the engine: resampling to 1.5 mm, 128³ tiles at overlap 0.5 with Gaussian",
    "blending, softmax, probabilities back to the source grid, argmax. Peak resident set of the process that did only this,",
    "each its own process: the engine as it runs by default (the last 1×1×1 convolution split off: its",
    `${features} input features blended, the convolution applied per finished row), beside the same build with`,
    "`inference.headSplit: false` (the whole network, 101 logits blended: the engine before the split, whose code path is",
    'unchanged), at the same time; then the split with `inference.accumulator: "float16"`, alone after them.',
    "",
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ${machine.os}; Node ${machine.node}; onnxruntime-node ${machine.onnxruntime}; ${machine.date}.`,
    "",
    "| | MiB |",
    "| --- | --- |",
    `| peak resident set, float32, whole network (\`headSplit: false\`, the engine before the split) | ${mib(whole.peakRssMiB)} |`,
    `| **peak resident set, float32, head split off (the default)** | **${mib(result.peakRssMiB)}** |`,
    `| **peak resident set, float16, head split off** | **${mib(result.float16.peakRssMiB)}** |`,
    `| the process with the CT made and the session loaded, before inference (split float32 run) | ${mib(result.sessionRssMiB)} |`,
    `| one tile's logits (101 × 128³ float32), whole network: held by onnxruntime, then copied into JS, so twice at the peak | ${mib(result.tileLogitsMiB)} |`,
    `| one tile's features (${features} × 128³ float32), split: the same, twice | ${mib(result.tileFeaturesMiB)} |`,
    `| accumulated logits, whole network: at most ${rowsHeld.toLocaleString("en")} rows of the model grid at once, float32 | ${mib(result.rowBandLogitsFloat32MiB)} |`,
    `| accumulated features, split: the same rows, ${features} channels and the weights, float32 | ${mib(result.rowBandFeaturesFloat32MiB)} |`,
    `| the same rows with float16 means (weights float32) | ${mib(result.rowBandFeaturesFloat16MiB)} |`,
    `| the CT volume itself (float32) | ${mib(result.volumeMiB)} |`,
    `| every class's probabilities on the model grid ${result.modelGrid}, at once (not held) | ${mib(result.wholeModelGridProbabilitiesMiB)} |`,
    `| every class's probabilities on the source grid, at once (not held) | ${mib(result.wholeSourceGridProbabilitiesMiB)} |`,
    "",
    `Split, float32: ${result.seconds.toFixed(1)} s (${result.networkSeconds.toFixed(1)} s in onnxruntime); whole: ${whole.seconds.toFixed(1)} s (${whole.networkSeconds.toFixed(1)} s), at the same time (split/whole ${(result.seconds / whole.seconds).toFixed(2)}×);` +
      ` split, float16: ${half.seconds.toFixed(1)} s (${half.networkSeconds.toFixed(1)} s in onnxruntime), alone after them.`,
    `${result.labelValuesFound} distinct label values (whole: ${whole.labelValuesFound}); **${splitVsWhole.differing} of ${voxels.toLocaleString("en")} voxels' labels differ** between the split and the whole network (float32);` +
      ` float16 (split) differs from the whole network's float32 in ${halfVsWhole}, from the split's float32 in ${halfVsSplit}.`,
    "",
    ...(probeSplit.length
      ? [
          `Where split and whole differ (${probeSplit.length} voxels probed: each class's probability interpolated from the model rows around them, as the labeller does; ` +
            `${probesAgree ? "the probes give both runs' labels" : "**the probes do not give the runs' labels**"}): ` +
            `each run prefers its own label to the other's by at most ${widestPreference.toExponential(1)} in probability, where the best class's probability is ` +
            `${Math.min(...bestProbability).toFixed(4)}–${Math.max(...bestProbability).toFixed(4)} (a float32 step there is ${ulp(Math.min(...bestProbability)).toExponential(1)}–${ulp(Math.max(...bestProbability)).toExponential(1)}): ties at float32 rounding, which either run breaks as its rounding falls.`,
          "",
        ]
      : []),
    "Where the split float32 run's time went (self time, `node --cpu-prof`):",
    "",
    "| function | s | share |",
    "| --- | --- | --- |",
    ...result.profile.map((p) => `| ${p.function} | ${p.seconds.toFixed(1)} | ${(p.share * 100).toFixed(0)} % |`),
    "",
    "Why the head can be split off: the network ends in a 1×1×1 convolution, the same affine map at every voxel",
    "(logits = W·f + b), and Gaussian blending is a weighted mean, which commutes with it:",
    "Σwᵢ(W fᵢ + b) / Σwᵢ = W (Σwᵢ fᵢ / Σwᵢ) + b. So onnxruntime runs the network without that convolution",
    "(src/inference/headSplit.ts cuts it out of the ONNX file), the features are blended per row (y, z) of the model",
    "grid, and when a row is final (the last tile that reaches it has been blended) W·f + b is applied to that row",
    "only, then the softmax (src/inference/tilePredictor.ts). Nothing with every class is larger than one row. The",
    "sums are taken in another order, so the logits agree to float32 rounding (test/unit/headSplit.test.ts: 1e-5),",
    "not to the bit; labels can differ only at near-ties, counted above.",
    "",
    "Why it stays bounded: the blended sums are kept per row of the model grid and handed on as soon as they are final",
    "(src/inference/slidingWindow.ts); each source row is labelled as soon as the four model rows it lies between have",
    "come, and model rows no longer needed are let go (`SourceLabeller` in src/inference/segmentVolume.ts).",
    "",
  ];
  writeFileSync(path.join(ROOT, "bench", "MEMORY.md"), md.join("\n"));
  process.stdout.write(md.join("\n"));
}

if (process.argv[2] === "--probe") runBench(() => probe(process.argv[3]!, process.argv[4] as Head, process.argv[5]!));
else if (process.argv[2] === "--child")
  runBench(() =>
    child(process.argv[3]!, process.argv[4] as "float32" | "float16", process.argv[5] as Head, process.argv[6]!),
  );
else runBench(main);
