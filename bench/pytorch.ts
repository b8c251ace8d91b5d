/**
 * `npm run bench:pytorch`: the same network (a 3D U-Net, 16 base features, 3 poolings) over the same volume with the
 * same algorithm (resample to 1.5 mm, 128³ tiles at overlap 0.5, Gaussian blending, softmax), once through the engine
 * (onnxruntime-node, in process) and once through PyTorch (training/reference_inference.py), in the same run.
 * Voxels per second of each (source voxels over seconds from volume to model-grid probabilities) and the ratio;
 * the two outputs are compared too. Before/after in the same run: the engine also runs the network as exported before
 * issue 19's changes (training/bench_torch.py's before.onnx) with the session options it had then. Writes
 * bench/PYTORCH.md and the "pytorch" entry of bench/results.json.
 */

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import ort from "onnxruntime-node";
import { tempDir } from "../harness/tempDir.js";
import { exec, ROOT } from "../harness/tools.js";
import { modelGridProbabilities } from "../src/inference/segmentVolume.js";
import { createSession } from "../src/inference/session.js";
import { tileStarts } from "../src/inference/slidingWindow.js";
import { createLogger } from "../src/log.js";
import { ManifestSchema } from "../src/models/manifest.js";
import { installedVersion, machineFacts, mergeResults, runBench } from "./record.js";
import { benchManifestJson, ellipticalBody } from "./synthetic.js";

const DIMS: [number, number, number] = [384, 384, 200];
const SPACING: [number, number, number] = [1, 1, 1];

/**
 * This CPU's peak float32 rate: cores × clock × FLOPs per cycle per core (two FMA units of 8 lanes with AVX2, of 16
 * with AVX-512, each FMA two FLOPs). The clock is /proc/cpuinfo's (a VM's nominal clock; turbo would add).
 */
function cpuPeak(): { gflops: number; mhz: number; flopsPerCycle: number } {
  const info = readFileSync("/proc/cpuinfo", "utf8");
  const mhz = Number(/cpu MHz\s*:\s*([\d.]+)/.exec(info)?.[1] ?? 0);
  const flags = /flags\s*:(.*)/.exec(info)?.[1] ?? "";
  const flopsPerCycle = /\bavx512f\b/.test(flags) ? 64 : /\bfma\b/.test(flags) && /\bavx2\b/.test(flags) ? 32 : 16;
  return { gflops: (os.cpus().length * mhz * flopsPerCycle) / 1000, mhz, flopsPerCycle };
}

/** onnxruntime's own profile of one 128³ tile: kernel time by operator type, as shares. */
async function onnxruntimeSplit(onnx: string, dir: string): Promise<Record<string, number>> {
  const session = await ort.InferenceSession.create(onnx, {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
    enableProfiling: true,
    profileFilePrefix: path.join(dir, "ort"),
  });
  const tile = new Float32Array(128 ** 3).map((_, i) => Math.sin(i * 0.001));
  await session.run({ image: new ort.Tensor("float32", tile, [1, 1, 128, 128, 128]) });
  session.endProfiling();
  await session.release();
  const file = readdirSync(dir).find((f) => f.startsWith("ort") && f.endsWith(".json"));
  const events = JSON.parse(readFileSync(path.join(dir, file!), "utf8")) as {
    cat: string;
    name: string;
    dur: number;
    args?: { op_name?: string };
  }[];
  const byOp: Record<string, number> = {};
  let total = 0;
  for (const e of events)
    if (e.cat === "Node" && e.name.endsWith("_kernel_time")) {
      const op = e.args?.op_name ?? "?";
      byOp[op] = (byOp[op] ?? 0) + e.dur;
      total += e.dur;
    }
  return Object.fromEntries(Object.entries(byOp).map(([op, us]) => [op, Math.round((us / total) * 1000) / 1000]));
}

async function main(): Promise<void> {
  const work = tempDir("bench-torch-");
  await exec("/usr/bin/python3", [path.join(ROOT, "training", "bench_torch.py"), "--out", work]);
  const raw = benchManifestJson("bench", "bench", 8, [{ value: 1, name: "body", color: [255, 0, 0] }]);
  const manifest = ManifestSchema.parse(raw);
  writeFileSync(path.join(work, "model.json"), JSON.stringify(raw));
  // a CT-like volume: an elliptical body of soft tissue in air
  const [nx, ny, nz] = DIMS;
  const data = ellipticalBody([nx, ny, nz], (i, j, k) => 40 + ((i * 7 + j * 13 + k * 3) % 40));
  writeFileSync(path.join(work, "volume.f32"), Buffer.from(data.buffer));

  // the engine's own session options (src/inference/session.ts), as the node creates them
  const { session } = await createSession(
    path.join(work, "bench", "model.onnx"),
    { executionProviders: ["cpu"], intraOpThreads: 0 },
    createLogger({ level: "error", silent: true }),
  );
  // the network's share of the engine's time: every call to onnxruntime, timed
  let networkSeconds = 0;
  const run = session.run.bind(session);
  session.run = (async (...args: Parameters<typeof run>) => {
    const t = performance.now();
    const out = await run(...args);
    networkSeconds += (performance.now() - t) / 1000;
    return out;
  }) as typeof session.run;
  const volume = { dims: DIMS, spacing: SPACING, data, seriesInstanceUID: "bench" };
  // first nnU-Net's tiling exactly (the reference's algorithm), then the engine's default (an axis ≤ 10 % over the patch is one tile)
  const engine = async (stretch: number) => {
    const t0 = performance.now();
    const out = await modelGridProbabilities(volume, { ...manifest, inference: { ...manifest.inference, stretch } }, [
      session,
    ]);
    return { ...out, seconds: (performance.now() - t0) / 1000 };
  };
  const exact = await engine(0);
  const exactNetworkSeconds = networkSeconds;
  const fitted = await engine(manifest.inference.stretch);
  await session.release();
  // before: onnxruntime's InstanceNormalization, upsampling before the 1x1 up-convolutions, the old session options
  const beforeSession = await ort.InferenceSession.create(path.join(work, "bench", "before.onnx"), {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
  });
  const tb = performance.now();
  const before = await modelGridProbabilities(
    volume,
    { ...manifest, inference: { ...manifest.inference, stretch: 0 } },
    [beforeSession],
  );
  const beforeSeconds = (performance.now() - tb) / 1000;
  await beforeSession.release();
  const operators = await onnxruntimeSplit(path.join(work, "bench", "model.onnx"), work);
  const { flopsPer128Tile } = JSON.parse(readFileSync(path.join(work, "bench", "flops.json"), "utf8")) as {
    flopsPer128Tile: number;
  };
  const peak = cpuPeak();

  const { stdout } = await exec(
    "/usr/bin/python3",
    [
      path.join(ROOT, "training", "reference_inference.py"),
      "--smoke",
      work,
      "--net",
      "bench",
      "--manifest",
      path.join(work, "model.json"),
      "--volume",
      path.join(work, "volume.f32"),
      "--dims",
      ...DIMS.map(String),
      "--spacing",
      ...SPACING.map(String),
      "--out",
      path.join(work, "probs.f32"),
      "--timing",
    ],
    { maxBuffer: 1 << 20 },
  );
  const torch = JSON.parse(stdout.trim().split("\n").at(-1)!) as { seconds: number; threads: number; tiles: number };
  const b = readFileSync(path.join(work, "probs.f32"));
  const ref = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  const record = exact.record;
  const n = record.modelDims[0] * record.modelDims[1] * record.modelDims[2];
  const worstOf = (probs: Float32Array[]) => {
    let worst = 0;
    for (let c = 0; c < probs.length; c++)
      for (let v = 0; v < n; v++) worst = Math.max(worst, Math.abs(probs[c]![v]! - ref[c * n + v]!));
    return worst;
  };
  const worst = worstOf(exact.probs);
  const beforeWorst = worstOf(before.probs);
  const fittedWorst = worstOf(fitted.probs);
  let labelsDiffer = 0;
  for (let v = 0; v < n; v++) if (fitted.probs[1]![v]! > fitted.probs[0]![v]! !== ref[n + v]! > ref[v]!) labelsDiffer++;
  const fittedTiles = [0, 1, 2].reduce((t, a) => {
    const size = record.paddedDims[a]!,
      p = manifest.inference.patchSize![a]!;
    return (
      t * (size <= p * (1 + manifest.inference.stretch) ? 1 : tileStarts(size, p, manifest.inference.overlap).length)
    );
  }, 1);
  const engineSeconds = exact.seconds;

  const voxels = nx * ny * nz;
  const result = {
    volume: `${DIMS.join("×")} at ${SPACING.join("×")} mm`,
    modelGrid: record.modelDims.join("×"),
    tiles: torch.tiles,
    engine: {
      seconds: engineSeconds,
      voxelsPerSecond: voxels / engineSeconds,
      // where the time went: onnxruntime's runs, and the rest (resampling, tiles, blending, softmax) in JS
      networkSeconds: exactNetworkSeconds,
      otherSeconds: engineSeconds - exactNetworkSeconds,
    },
    // the floor: the network's arithmetic against this CPU's peak
    floor: {
      gflopPerTile: flopsPer128Tile / 1e9,
      peakGflops: peak.gflops,
      cpuMHz: peak.mhz,
      flopsPerCyclePerCore: peak.flopsPerCycle,
      reachedGflops: (torch.tiles * flopsPer128Tile) / 1e9 / exactNetworkSeconds,
      floorSeconds: (torch.tiles * flopsPer128Tile) / 1e9 / peak.gflops,
    },
    // onnxruntime's profile of one tile: kernel time by operator type
    operators,
    engineDefault: {
      seconds: fitted.seconds,
      voxelsPerSecond: voxels / fitted.seconds,
      tiles: fittedTiles,
      maxProbabilityDifference: fittedWorst,
      labelsDiffering: labelsDiffer,
    },
    before: { seconds: beforeSeconds, maxProbabilityDifference: beforeWorst, ratio: torch.seconds / beforeSeconds },
    pytorch: { seconds: torch.seconds, voxelsPerSecond: voxels / torch.seconds, threads: torch.threads },
    ratio: torch.seconds / engineSeconds,
    ratioDefault: torch.seconds / fitted.seconds,
    maxProbabilityDifference: worst,
  };
  const machine = machineFacts({
    onnxruntime: installedVersion("onnxruntime-node"),
    torch: (await exec("/usr/bin/python3", ["-c", "import torch; print(torch.__version__)"])).stdout.trim(),
  });
  mergeResults({ pytorch: { machine, result } });
  const md = [
    "# Benchmark: the engine against PyTorch",
    "",
    "Written by `npm run bench:pytorch` (bench/pytorch.ts); do not edit by hand. One network (3D U-Net, 16 base features,",
    "3 poolings, seeded weights), one volume, one algorithm (resample to 1.5 mm, 128³ tiles at overlap 0.5, Gaussian",
    "blending, softmax): the engine through onnxruntime-node (CPU provider, the node's session options), and",
    "`training/reference_inference.py` through PyTorch (threads = cores). Seconds from the volume to model-grid probabilities.",
    "",
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ${machine.os}; Node ${machine.node}; onnxruntime-node ${machine.onnxruntime}; PyTorch ${machine.torch}; ${machine.date}.`,
    "",
    `Volume ${result.volume}, model grid ${result.modelGrid}, ${result.tiles} tiles.`,
    "",
    "| | seconds | source voxels / s |",
    "| --- | --- | --- |",
    `| Delineate engine, nnU-Net's tiles (${result.tiles}) | ${engineSeconds.toFixed(1)} | ${Math.round(result.engine.voxelsPerSecond).toLocaleString("en")} |`,
    `| Delineate engine, default tiles (${fittedTiles}: an axis ≤ 10 % over the patch is one tile) | ${fitted.seconds.toFixed(1)} | ${Math.round(result.engineDefault.voxelsPerSecond).toLocaleString("en")} |`,
    `| Delineate engine before (onnxruntime's InstanceNormalization, upsampling first, spinning threads), nnU-Net's tiles | ${beforeSeconds.toFixed(1)} | ${Math.round(voxels / beforeSeconds).toLocaleString("en")} |`,
    `| PyTorch ${machine.torch} (${torch.threads} threads), nnU-Net's tiles (${result.tiles}) | ${torch.seconds.toFixed(1)} | ${Math.round(result.pytorch.voxelsPerSecond).toLocaleString("en")} |`,
    "",
    `Ratio (PyTorch seconds / engine seconds): **${result.ratio.toFixed(2)}×** with the same tiles (largest probability difference ${worst.toExponential(2)});`,
    `**${result.ratioDefault.toFixed(2)}×** with the engine's default tiling (largest probability difference ${fittedWorst.toExponential(2)}, ${labelsDiffer} of ${n.toLocaleString("en")} model-grid labels differ: the one z tile`,
    "sees the whole depth where nnU-Net blends two tiles that nearly coincide).",
    "",
    `Before, in this run: **${result.before.ratio.toFixed(2)}×**, largest probability difference ${beforeWorst.toExponential(2)}. The difference was onnxruntime's`,
    "CPU InstanceNormalization, which sums each channel's 2 M voxels in float32 (9e-3 in one CT tile's logits, where PyTorch",
    "is within 1e-5 of float64); the export now reduces per row, then across rows (training/exact_norm.py).",
    "",
    `Where the engine's time went (nnU-Net's tiles): ${exactNetworkSeconds.toFixed(1)} s in onnxruntime, ${(engineSeconds - exactNetworkSeconds).toFixed(1)} s in the rest`,
    "(resampling, cutting tiles, blending, softmax). Inside onnxruntime, one tile's kernel time by operator: " +
      Object.entries(operators)
        .sort((a, b) => b[1] - a[1])
        .map(([op, share]) => `${op} ${(share * 100).toFixed(0)} %`)
        .join(", ") +
      ".",
    "",
    `The floor: ${(flopsPer128Tile / 1e9).toFixed(0)} GFLOP of convolutions per 128³ tile; this CPU's peak is ${os.cpus().length} cores × ${peak.mhz.toFixed(0)} MHz ×`,
    `${peak.flopsPerCycle} FLOP/cycle = ${peak.gflops.toFixed(0)} GFLOP/s, so ${torch.tiles} tiles take at least ${result.floor.floorSeconds.toFixed(1)} s; onnxruntime reached`,
    `${result.floor.reachedGflops.toFixed(0)} GFLOP/s (${((result.floor.reachedGflops / peak.gflops) * 100).toFixed(0)} % of peak) while running them.`,
    "",
  ].join("\n");
  writeFileSync(path.join(ROOT, "bench", "PYTORCH.md"), md);
  process.stdout.write(md);
}

runBench(main);
