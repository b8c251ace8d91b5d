/**
 * `npm run bench:pytorch`: the same network (a 3D U-Net, 16 base features, 3 poolings) over the same volume with the
 * same algorithm (resample to 1.5 mm, 128³ tiles at overlap 0.5, Gaussian blending, softmax), once through the engine
 * (onnxruntime-node, in process) and once through PyTorch (training/reference_inference.py), in the same run.
 * Voxels per second of each (source voxels over seconds from volume to model-grid probabilities) and the ratio;
 * the two outputs are compared too. Writes bench/PYTORCH.md and the "pytorch" entry of bench/results.json.
 */

import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
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

async function main(): Promise<void> {
  const work = tempDir("bench-torch-");
  await exec("/usr/bin/python3", [path.join(ROOT, "training", "bench_torch.py"), "--out", work]);
  const raw = benchManifestJson("bench", "bench", 8, [{ value: 1, name: "body", color: [255, 0, 0] }]);
  const manifest = ManifestSchema.parse(raw);
  writeFileSync(path.join(work, "model.json"), JSON.stringify(raw));
  // a CT-like volume: an elliptical body of soft tissue in air
  const data = ellipticalBody(DIMS, (i, j, k) => 40 + ((i * 7 + j * 13 + k * 3) % 40));
  writeFileSync(path.join(work, "volume.f32"), Buffer.from(data.buffer));

  // the engine's own session options (src/inference/session.ts), as the node creates them
  const { session } = await createSession(
    path.join(work, "bench", "model.onnx"),
    { executionProviders: ["cpu"], intraOpThreads: 0 },
    createLogger({ level: "error", silent: true }),
  );
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
  const fitted = await engine(manifest.inference.stretch);
  await session.release();

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

  const voxels = DIMS[0] * DIMS[1] * DIMS[2];
  const result = {
    volume: `${DIMS.join("×")} at ${SPACING.join("×")} mm`,
    modelGrid: record.modelDims.join("×"),
    tiles: torch.tiles,
    engine: { seconds: engineSeconds, voxelsPerSecond: voxels / engineSeconds },
    engineDefault: {
      seconds: fitted.seconds,
      voxelsPerSecond: voxels / fitted.seconds,
      tiles: fittedTiles,
      maxProbabilityDifference: fittedWorst,
      labelsDiffering: labelsDiffer,
    },
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
    `| PyTorch ${machine.torch} (${torch.threads} threads), nnU-Net's tiles (${result.tiles}) | ${torch.seconds.toFixed(1)} | ${Math.round(result.pytorch.voxelsPerSecond).toLocaleString("en")} |`,
    "",
    `Ratio (PyTorch seconds / engine seconds): **${result.ratio.toFixed(2)}×** with the same tiles (largest probability difference ${worst.toExponential(2)});`,
    `**${result.ratioDefault.toFixed(2)}×** with the engine's default tiling (largest probability difference ${fittedWorst.toExponential(2)}, ${labelsDiffer} of ${n.toLocaleString("en")} model-grid labels differ: the one z tile`,
    "sees the whole depth where nnU-Net blends two tiles that nearly coincide).",
    "",
  ].join("\n");
  writeFileSync(path.join(ROOT, "bench", "PYTORCH.md"), md);
  process.stdout.write(md);
}

runBench(main);
