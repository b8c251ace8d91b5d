import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import ort from "onnxruntime-node";
import { type HeadSplit, splitHead } from "../../src/inference/headSplit.js";
import { modelGridProbabilities, segmentVolume } from "../../src/inference/segmentVolume.js";
import { createSession, type ModelSession } from "../../src/inference/session.js";
import { createLogger } from "../../src/log.js";
import { ManifestSchema } from "../../src/models/manifest.js";
import { exec, tempDir } from "../helpers/tools.js";

/**
 * Networks exported by PyTorch: some end in a 1×1×1 convolution that can be split off (with and without bias, 3D and
 * 2D), some end in something that cannot (a 3×3×3 kernel, a softmax after the 1×1×1, a grouped 1×1×1), and two folds.
 */
const NETWORKS = `
import sys, os, torch
torch.manual_seed(3)
out = sys.argv[1]
def body(c):
    return [torch.nn.Conv3d(1, c, 3, padding=1), torch.nn.LeakyReLU(0.01)]
nets = {
    "head": torch.nn.Sequential(*body(6), torch.nn.Conv3d(6, 11, 1)),
    "fold2": torch.nn.Sequential(*body(5), torch.nn.Conv3d(5, 11, 1)),
    "nobias": torch.nn.Sequential(*body(6), torch.nn.Conv3d(6, 11, 1, bias=False)),
    "k3": torch.nn.Sequential(*body(6), torch.nn.Conv3d(6, 11, 3, padding=1)),
    "softmax": torch.nn.Sequential(*body(6), torch.nn.Conv3d(6, 11, 1), torch.nn.Softmax(dim=1)),
    "grouped": torch.nn.Sequential(*body(6), torch.nn.Conv3d(6, 12, 1, groups=2)),
    "strided": torch.nn.Sequential(*body(6), torch.nn.Conv3d(6, 11, 1, stride=2)),
    "narrow": torch.nn.Sequential(*body(6), torch.nn.Conv3d(6, 3, 1)),
}
for name, net in nets.items():
    # outputs spread over a few units, as trained logits are, so that classes compete
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(4)
    torch.onnx.export(net.eval(), torch.zeros(1, 1, 8, 8, 8), os.path.join(out, name + ".onnx"), opset_version=17,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "n", 2: "z", 3: "y", 4: "x"}, "logits": {0: "n", 2: "z", 3: "y", 4: "x"}})
net2d = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 7, 1)).eval()
torch.onnx.export(net2d, torch.zeros(1, 1, 8, 8), os.path.join(out, "head2d.onnx"), opset_version=17,
                  input_names=["image"], output_names=["logits"],
                  dynamic_axes={"image": {0: "n", 2: "y", 3: "x"}, "logits": {0: "n", 2: "y", 3: "x"}})
`;

const CLASSES = 11;

/** A reproducible random tile in [-2, 2). */
function randomTile(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 4 - 2);
}

describe("splitting a network's last 1×1×1 convolution off", () => {
  let dir: string;
  const sessions: ort.InferenceSession[] = [];
  const open = async (bytes: Uint8Array | string) => {
    const options = { executionProviders: ["cpu"] };
    const s = await (typeof bytes === "string"
      ? ort.InferenceSession.create(bytes, options)
      : ort.InferenceSession.create(bytes, options));
    sessions.push(s);
    return s;
  };
  before(async () => {
    dir = tempDir("head-split-");
    await exec("/usr/bin/python3", ["-c", NETWORKS, dir]);
  });
  after(async () => {
    for (const s of sessions) await s.release();
  });

  /** The whole network's logits and, from the split one's features, W·f + b written out here, on the same tile. */
  async function bothWays(name: string, split: HeadSplit, shape: number[]) {
    const voxels = shape.slice(2).reduce((a, b) => a * b, 1);
    const tile = new ort.Tensor("float32", randomTile(voxels * shape[0]!, 7), shape);
    const whole = (await (await open(path.join(dir, `${name}.onnx`))).run({ image: tile })).logits!
      .data as Float32Array;
    const features = (await (await open(split.onnx)).run({ image: tile }))[split.featureOutput]!.data as Float32Array;
    const { weight, bias, classes, features: c } = split.head;
    const headed = new Float64Array(whole.length);
    for (let b = 0; b < shape[0]!; b++)
      for (let k = 0; k < classes; k++)
        for (let v = 0; v < voxels; v++) {
          let a = bias[k]!;
          for (let j = 0; j < c; j++) a += weight[k * c + j]! * features[(b * c + j) * voxels + v]!;
          headed[(b * classes + k) * voxels + v] = a;
        }
    return { whole, headed, features, c };
  }

  for (const [name, features] of [
    ["head", 6],
    ["nobias", 6],
  ] as const)
    it(`${name}: the split model's features through the head are the whole model's logits within 1e-5 of their size`, async () => {
      const split = splitHead(readFileSync(path.join(dir, `${name}.onnx`)));
      assert.ok(split, "split");
      assert.equal(split.head.classes, CLASSES);
      assert.equal(split.head.features, features);
      if (name === "nobias") assert.deepEqual([...split.head.bias], new Array(CLASSES).fill(0));
      const { whole, headed, features: f } = await bothWays(name, split, [2, 1, 9, 10, 12]);
      assert.equal(f.length, 2 * features * 9 * 10 * 12, "the split model outputs the features, not the logits");
      let worst = 0,
        size = 0;
      for (let i = 0; i < whole.length; i++) {
        worst = Math.max(worst, Math.abs(whole[i]! - headed[i]!));
        size = Math.max(size, Math.abs(whole[i]!));
      }
      assert.ok(size > 1, `logits of a few units (largest ${size})`);
      assert.ok(worst <= 1e-5 * size, `largest difference ${worst}, largest logit ${size}`);
    });

  it("a 2D network's last 1×1 convolution is split off the same way", async () => {
    const split = splitHead(readFileSync(path.join(dir, "head2d.onnx")));
    assert.ok(split);
    assert.equal(split.head.classes, 7);
    assert.equal(split.head.features, 4);
    const { whole, headed } = await bothWays("head2d", split, [1, 1, 13, 11]);
    const size = whole.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    for (let i = 0; i < whole.length; i++) assert.ok(Math.abs(whole[i]! - headed[i]!) <= 1e-5 * size);
  });

  for (const name of ["k3", "softmax", "grouped", "strided"])
    it(`${name}: a network not ending in a plain 1×1×1 convolution is not split`, () => {
      assert.equal(splitHead(readFileSync(path.join(dir, `${name}.onnx`))), undefined);
    });

  it("bytes that are not an ONNX model are not split (onnxruntime says what is wrong with them)", () => {
    assert.equal(splitHead(new Uint8Array([0x3a, 0xff, 0xff, 0x0f])), undefined);
    assert.equal(splitHead(new Uint8Array(0)), undefined);
  });

  it("createSession splits when asked and the head has fewer inputs than outputs (not otherwise), and keeps it beside the session", async () => {
    const log = createLogger({ level: "error", silent: true });
    const options = { executionProviders: ["cpu"] as const, intraOpThreads: 1 };
    const split = await createSession(path.join(dir, "head.onnx"), { ...options, headSplit: true }, log);
    const whole = await createSession(path.join(dir, "head.onnx"), options, log);
    sessions.push(split.session, whole.session);
    assert.equal(split.split?.head.features, 6);
    assert.deepEqual(split.session.outputNames, [split.split?.featureOutput]);
    assert.equal(whole.split, undefined);
    assert.deepEqual(whole.session.outputNames, ["logits"]);
    // 6 features to 3 classes: blending the features would hold more than the logits, so it runs whole
    assert.ok(splitHead(readFileSync(path.join(dir, "narrow.onnx"))), "it could be split");
    const narrow = await createSession(path.join(dir, "narrow.onnx"), { ...options, headSplit: true }, log);
    sessions.push(narrow.session);
    assert.equal(narrow.split, undefined);
    assert.deepEqual(narrow.session.outputNames, ["logits"]);
  });

  const manifest = (inference: Record<string, unknown>) =>
    ManifestSchema.parse({
      id: "split",
      version: "0.0.1",
      name: "split",
      modality: "CT",
      dimensions: 3,
      files: ["head.onnx"],
      input: { name: "image", layout: "NCZYX", spacing: [1.5, 1.5, 1.5], sizeMultiple: 1, padding: "edge" },
      normalization: { kind: "ct-clip-zscore", clip: [-200, 200], mean: 0, std: 100 },
      output: { name: "logits", activation: "softmax" },
      inference: { patchSize: [12, 12, 12], overlap: 0.5, blend: "gaussian", ...inference },
      labels: Array.from({ length: CLASSES - 1 }, (_, i) => ({
        value: i + 1,
        name: `label ${i + 1}`,
        color: [i, 0, 0],
        category: { code: "85756007", scheme: "SCT", meaning: "Tissue" },
        type: { code: "85756007", scheme: "SCT", meaning: "Tissue" },
        rtInterpretedType: "ORGAN",
      })),
      outputs: ["seg"],
    });
  // 29×25×21 voxels of 1.2 mm: a 23×20×17 model grid, 3×3×3 overlapping 12³ tiles
  const dims: [number, number, number] = [29, 25, 21];
  const volume = {
    dims,
    spacing: [1.2, 1.2, 1.2] as [number, number, number],
    direction: [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ] as [[number, number, number], [number, number, number], [number, number, number]],
    data: randomTile(dims[0] * dims[1] * dims[2], 5).map((v) => v * 150),
    seriesInstanceUID: "1.2.3",
  };
  const splitSession = async (name: string): Promise<ModelSession> => {
    const s = splitHead(readFileSync(path.join(dir, `${name}.onnx`)))!;
    return { session: await open(s.onnx), split: { featureOutput: s.featureOutput, head: s.head } };
  };

  for (const [what, inference, folds] of [
    ["tiles", {}, ["head"]],
    ["tiles, mirroring", { mirrorAxes: ["x", "z"] }, ["head"]],
    ["tiles, two folds", {}, ["head", "fold2"]],
    ["tiles, float16 accumulator", { accumulator: "float16" }, ["head"]],
  ] as const)
    it(`${what}: the same probabilities within 1e-5 and the same labels, split or whole`, async () => {
      const m = manifest(inference);
      const whole = await Promise.all(folds.map((f) => open(path.join(dir, `${f}.onnx`))));
      const split = await Promise.all(folds.map(splitSession));
      const a = await modelGridProbabilities(volume, m, whole);
      const b = await modelGridProbabilities(volume, m, split);
      assert.deepEqual(a.record.modelDims, [23, 20, 17]);
      let worst = 0,
        spread = 0;
      for (let c = 0; c < CLASSES; c++)
        for (let v = 0; v < a.probs[c]!.length; v++) {
          worst = Math.max(worst, Math.abs(a.probs[c]![v]! - b.probs[c]![v]!));
          spread = Math.max(spread, a.probs[c]![v]!);
        }
      assert.ok(spread > 0.5, `classes are told apart (largest probability ${spread})`);
      // float16 rounds the stored features instead of the stored logits: not the same numbers, so a looser bound
      assert.ok(worst <= (what.includes("float16") ? 1e-2 : 1e-5), `largest difference ${worst}`);
      const labelsWhole = await segmentVolume(volume, m, whole);
      const labelsSplit = await segmentVolume(volume, m, split);
      assert.ok(new Set(labelsWhole.data).size >= 3, "several labels are found");
      if (!what.includes("float16")) assert.deepEqual(labelsSplit.data, labelsWhole.data);
    });
});
