/**
 * `npm run bench:memory`: peak memory of segmenting a 512×512×300 CT with a 100-label model. The network is small
 * (two convolutions, 101 output channels: the cost under test is the engine's handling of 101 classes, not the
 * network); the algorithm is the usual one (resample to 1.5 mm, 128³ tiles at overlap 0.5, Gaussian blending,
 * softmax, probabilities back to the source grid, argmax). Each run is its own process, so its peak resident set is
 * its own. Writes bench/MEMORY.md and the "memory" entry of bench/results.json.
 */

import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ort from "onnxruntime-node";
import { tempDir } from "../harness/tempDir.js";
import { exec, ROOT } from "../harness/tools.js";
import { segmentVolume } from "../src/inference/segmentVolume.js";
import { ManifestSchema } from "../src/models/manifest.js";
import { installedVersion, machineFacts, mergeResults, runBench } from "./record.js";
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

/** The child: one segmentation, then its figures as a JSON line. */
async function child(onnx: string): Promise<void> {
  const data = ellipticalBody(DIMS, (i, j, k) => 40 + ((i * 7 + j * 13 + k * 3) % 200) - 100);
  const session = await ort.InferenceSession.create(onnx, {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
  });
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
    manifest,
    [session],
  );
  const seconds = (performance.now() - t0) / 1000;
  const used = new Set(labels.data).size;
  process.stdout.write(
    `${JSON.stringify({ seconds, peakRssMiB: process.resourceUsage().maxRSS / 1024, labelValuesFound: used })}\n`,
  );
}

async function main(): Promise<void> {
  const work = tempDir("bench-memory-");
  const onnx = path.join(work, "model.onnx");
  await exec("/usr/bin/python3", ["-c", NETWORK, onnx]);
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--child", onnx], {
    encoding: "utf8",
    maxBuffer: 1 << 20,
  });
  const run = JSON.parse(out.trim().split("\n").at(-1)!) as {
    seconds: number;
    peakRssMiB: number;
    labelValuesFound: number;
  };

  const source = DIMS[0] * DIMS[1] * DIMS[2];
  const model = DIMS.map((n, a) => Math.round((n * SPACING[a]!) / 1.5));
  const modelVoxels = model[0]! * model[1]! * model[2]!;
  const classes = LABELS + 1;
  const result = {
    volume: `${DIMS.join("×")} at ${SPACING.join("×")} mm`,
    modelGrid: model.join("×"),
    classes,
    seconds: run.seconds,
    peakRssMiB: Math.round(run.peakRssMiB),
    labelValuesFound: run.labelValuesFound,
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
    "Peak resident set of the process that did only this.",
    "",
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ${machine.os}; Node ${machine.node}; onnxruntime-node ${machine.onnxruntime}; ${machine.date}.`,
    "",
    "| | MiB |",
    "| --- | --- |",
    `| **peak resident set, whole process** | **${result.peakRssMiB.toLocaleString("en")}** |`,
    `| the CT volume itself (float32) | ${result.volumeMiB.toLocaleString("en")} |`,
    `| every class's probabilities on the model grid ${result.modelGrid}, at once (not held) | ${result.wholeModelGridProbabilitiesMiB.toLocaleString("en")} |`,
    `| every class's probabilities on the source grid, at once (not held) | ${result.wholeSourceGridProbabilitiesMiB.toLocaleString("en")} |`,
    "",
    `${result.seconds.toFixed(1)} s; ${result.labelValuesFound} distinct label values in the result.`,
    "",
    "Why it stays bounded: tiles go band by band along z and the slices below a new band are final, so they are",
    "divided, softmaxed and handed on (src/inference/slidingWindow.ts); the accumulators hold one patch's depth of",
    "slices. Each source slice is labelled as soon as the two model slices around it have come, and model slices no",
    "longer needed are let go (`SourceLabeller` in src/inference/segmentVolume.ts). What remains is one band of",
    "accumulated logits (101 classes × 128 slices of the model grid's plane) and one tile's logits from the network.",
    "",
  ];
  writeFileSync(path.join(ROOT, "bench", "MEMORY.md"), md.join("\n"));
  process.stdout.write(md.join("\n"));
}

if (process.argv[2] === "--child") runBench(() => child(process.argv[3]!));
else runBench(main);
