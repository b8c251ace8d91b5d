import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { before, describe, it } from "node:test";
import ort from "onnxruntime-node";
import { splitHead } from "../../src/inference/headSplit.js";
import { modelGridProbabilities } from "../../src/inference/segmentVolume.js";
import { ManifestSchema } from "../../src/models/manifest.js";
import { exec, ROOT, tempDir } from "../helpers/tools.js";

/**
 * Parity: the engine's class probabilities on the model grid against training/reference_inference.py, a plain
 * PyTorch implementation of the same algorithm, on the same weights (trained a few steps by training/smoke.py) and
 * the same volume.
 */
describe("inference parity with a PyTorch reference", () => {
  let smoke: string;
  before(async () => {
    smoke = tempDir("parity-");
    await exec("/usr/bin/python3", [path.join(ROOT, "training", "smoke.py"), "--out", smoke, "--steps", "3"], {
      maxBuffer: 64 * 1024 * 1024,
    });
  });

  const cases = [
    {
      net: "unet3d",
      dims: [37, 29, 23] as [number, number, number],
      spacing: [1.6, 1.9, 2.7] as [number, number, number],
      dimensions: 3,
      layout: "NCZYX",
      target: [2, 2, 2],
      inference: { patchSize: [16, 16, 16], overlap: 0.5, blend: "gaussian", mirrorAxes: ["x", "z"] },
    },
    {
      net: "unet2d",
      dims: [40, 34, 5] as [number, number, number],
      spacing: [1.2, 1.3, 3] as [number, number, number],
      dimensions: 2,
      layout: "NCYX",
      target: [1.5, 1.5, 1],
      inference: { patchSize: [16, 16, 1], overlap: 0.5, blend: "gaussian", mirrorAxes: ["x", "y"] },
    },
  ];
  for (const c of cases) {
    it(`${c.dimensions}D U-Net (${c.net}): tiles, Gaussian blending and mirroring give PyTorch's probabilities within 1e-4, labels identical but for ties`, {
      timeout: 300_000,
    }, async () => {
      const work = tempDir("parity-");
      const raw = {
        id: `parity-${c.net}`,
        version: "0.0.1",
        name: "parity",
        modality: "CT",
        dimensions: c.dimensions,
        files: ["model.onnx"],
        input: { name: "image", layout: c.layout, spacing: c.target, sizeMultiple: 4, padding: "edge" },
        normalization: { kind: "ct-clip-zscore", clip: [-150, 150], mean: 10, std: 60 },
        output: { name: "logits", activation: "softmax" },
        inference: c.inference,
        labels: [
          {
            value: 1,
            name: "blob",
            color: [255, 0, 0],
            category: { code: "85756007", scheme: "SCT", meaning: "Tissue" },
            type: { code: "85756007", scheme: "SCT", meaning: "Tissue" },
            rtInterpretedType: "ORGAN",
          },
        ],
        outputs: ["seg"],
      };
      const manifest = ManifestSchema.parse(raw);
      writeFileSync(path.join(work, "model.json"), JSON.stringify(raw));
      // a volume with structure (a bright ellipsoid) and noise, in HU-like units
      const [nx, ny, nz] = c.dims;
      let seed = 11;
      const noise = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * 80;
      const data = new Float32Array(nx * ny * nz);
      for (let k = 0; k < nz; k++)
        for (let j = 0; j < ny; j++)
          for (let i = 0; i < nx; i++) {
            const inside =
              ((i - nx / 2) / (nx / 3)) ** 2 + ((j - ny / 2) / (ny / 3)) ** 2 + ((k - nz / 2) / (nz / 2.5)) ** 2 <= 1;
            data[(k * ny + j) * nx + i] = (inside ? 100 : -50) + noise();
          }
      writeFileSync(path.join(work, "volume.f32"), Buffer.from(data.buffer));

      const onnx = path.join(smoke, c.net, "model.onnx");
      const session = await ort.InferenceSession.create(onnx, { executionProviders: ["cpu"] });
      const volume = { dims: c.dims, spacing: c.spacing, data, seriesInstanceUID: "1.2.3" };
      const { probs, record } = await modelGridProbabilities(volume, manifest, [session]).finally(() =>
        session.release(),
      );
      // the same network with its last 1×1×1 convolution split off (headSplit.ts; the engine does so by default only
      // where that convolution has fewer inputs than outputs, not for 2 classes, so it is made here directly)
      const split = splitHead(readFileSync(onnx));
      assert.ok(split, "the U-Net ends in a 1×1×1 convolution");
      const features = await ort.InferenceSession.create(split.onnx, { executionProviders: ["cpu"] });
      const { probs: splitProbs } = await modelGridProbabilities(volume, manifest, [
        { session: features, split: { featureOutput: split.featureOutput, head: split.head } },
      ]).finally(() => features.release());
      await exec("/usr/bin/python3", [
        path.join(ROOT, "training", "reference_inference.py"),
        "--smoke",
        smoke,
        "--net",
        c.net,
        "--manifest",
        path.join(work, "model.json"),
        "--volume",
        path.join(work, "volume.f32"),
        "--dims",
        ...c.dims.map(String),
        "--spacing",
        ...c.spacing.map(String),
        "--out",
        path.join(work, "probs.f32"),
      ]);
      const b = readFileSync(path.join(work, "probs.f32"));
      const ref = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      const n = record.modelDims[0] * record.modelDims[1] * record.modelDims[2];
      assert.equal(
        ref.length,
        probs.length * n,
        `reference has ${ref.length} values for ${probs.length} classes × ${record.modelDims.join("×")}`,
      );
      let worst = 0,
        worstSplit = 0,
        labelDiff = 0,
        ties = 0,
        fg = 0;
      for (let v = 0; v < n; v++) {
        for (let ch = 0; ch < probs.length; ch++) {
          worst = Math.max(worst, Math.abs(probs[ch]![v]! - ref[ch * n + v]!));
          worstSplit = Math.max(worstSplit, Math.abs(splitProbs[ch]![v]! - ref[ch * n + v]!));
        }
        const ours = probs[1]![v]! > probs[0]![v]! ? 1 : 0,
          theirs = ref[n + v]! > ref[v]! ? 1 : 0;
        fg += ours;
        if (ours !== theirs) Math.abs(ref[n + v]! - ref[v]!) < 1e-4 ? ties++ : labelDiff++;
      }
      console.log(
        `# ${c.net}: model grid ${record.modelDims.join("×")}, max |Δp| ${worst.toExponential(2)} (head split off: ${worstSplit.toExponential(2)}), labels differing ${labelDiff} (+${ties} ties), foreground ${fg}`,
      );
      assert.ok(worst <= 1e-4, `probabilities differ by up to ${worst}`);
      assert.ok(worstSplit <= 1e-4, `with the head split off, probabilities differ by up to ${worstSplit}`);
      assert.equal(labelDiff, 0);
      assert.ok(fg > 0 && fg < n, "both classes occur, so the comparison is not trivial");
    });
  }
});
