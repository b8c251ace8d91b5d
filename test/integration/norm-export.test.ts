/**
 * The exported instance normalisation (training/exact_norm.py) against onnxruntime's own: one CT-like 128³ tile of
 * a seeded 3D U-Net through onnxruntime-node, as training/unet.py's export_onnx writes it and as torch.onnx.export
 * writes it, each compared with PyTorch's float32 logits for the same tile (training/norm_export_check.py). The
 * issue's bound is 1e-4 in probability; the plain export must miss it, or this tile no longer shows why the
 * two-level form exists.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { after, it } from "node:test";
import ort from "onnxruntime-node";
import { exec, ROOT, tempDir } from "../helpers/tools.js";

const floats = (file: string) => {
  const b = readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

/** The largest difference between two-class softmax probabilities of [2, N] logits. */
function largestProbabilityDifference(a: Float32Array, b: Float32Array): number {
  const n = a.length / 2;
  let worst = 0;
  for (let v = 0; v < n; v++) {
    const pa = 1 / (1 + Math.exp(a[v]! - a[n + v]!)),
      pb = 1 / (1 + Math.exp(b[v]! - b[n + v]!));
    worst = Math.max(worst, Math.abs(pa - pb));
  }
  return worst;
}

const work = tempDir("norm-export-");
after(() => rmSync(work, { recursive: true, force: true }));

it("a 128³ CT tile through the two-level export is within 1e-4 of PyTorch in probability; through onnxruntime's InstanceNormalization it is not", {
  timeout: 600_000,
}, async () => {
  await exec("/usr/bin/python3", [path.join(ROOT, "training", "norm_export_check.py"), "--out", work]);
  const input = new ort.Tensor("float32", floats(path.join(work, "input.f32")), [1, 1, 128, 128, 128]);
  const torch = floats(path.join(work, "logits.f32"));
  const through = async (file: string) => {
    const session = await ort.InferenceSession.create(path.join(work, file), { executionProviders: ["cpu"] });
    const out = (await session.run({ image: input })).logits!.data as Float32Array;
    await session.release();
    return largestProbabilityDifference(out, torch);
  };
  const twoLevel = await through("two_level.onnx");
  const plain = await through("plain.onnx");
  assert.ok(twoLevel <= 1e-4, `two-level export: largest probability difference ${twoLevel}`);
  assert.ok(plain > 1e-4, `onnxruntime's InstanceNormalization: largest probability difference ${plain}`);
});
