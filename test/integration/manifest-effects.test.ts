import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import ort from "onnxruntime-node";
import { segmentVolume } from "../../src/inference/segmentVolume.js";
import { ManifestSchema } from "../../src/models/manifest.js";
import type { Vec3 } from "../../src/volume/geometry.js";
import { exec, tempDir } from "../helpers/tools.js";

/**
 * A network whose answer depends on where a voxel is in the tensor: class 1 on the half of the tensor's x axis with
 * the larger index. So its labels, brought back to the source grid, show which patient direction the engine fed
 * along x: the manifest's `input.orientation` is seen at work, with answers known from the geometry alone. Its calls,
 * counted, show how tiles were placed and batched.
 */
const RAMP = `
import sys, torch
class Ramp(torch.nn.Module):
    def forward(self, x):
        r = torch.cumsum(torch.ones_like(x), dim=-1)
        return torch.cat([torch.zeros_like(x), r - r.mean(dim=-1, keepdim=True)], 1)
torch.onnx.export(Ramp(), torch.zeros(1, 1, 4, 6, 8), sys.argv[1], opset_version=17, input_names=["image"], output_names=["logits"],
                  dynamic_axes={"image": {0: "n", 2: "z", 3: "y", 4: "x"}, "logits": {0: "n", 2: "z", 3: "y", 4: "x"}})
torch.onnx.export(Ramp(), torch.zeros(1, 1, 6, 8), sys.argv[2], opset_version=17, input_names=["image"], output_names=["logits"],
                  dynamic_axes={"image": {0: "n", 2: "y", 3: "x"}, "logits": {0: "n", 2: "y", 3: "x"}})
`;

describe("manifest fields seen at work: orientation, stretched tiles, batches", () => {
  let session: ort.InferenceSession, session2d: ort.InferenceSession;
  before(async () => {
    const dir = tempDir("ramp-");
    await exec("/usr/bin/python3", ["-c", RAMP, path.join(dir, "ramp.onnx"), path.join(dir, "ramp2d.onnx")]);
    session = await ort.InferenceSession.create(path.join(dir, "ramp.onnx"), { executionProviders: ["cpu"] });
    session2d = await ort.InferenceSession.create(path.join(dir, "ramp2d.onnx"), { executionProviders: ["cpu"] });
  });
  after(async () => {
    await session?.release();
    await session2d?.release();
  });

  const manifestFor = (input: Record<string, unknown>, inference: Record<string, unknown> = {}, dimensions = 3) =>
    ManifestSchema.parse({
      id: "ramp",
      version: "0.0.1",
      name: "ramp",
      modality: "CT",
      dimensions,
      files: ["ramp.onnx"],
      input: { name: "image", layout: dimensions === 3 ? "NCZYX" : "NCYX", sizeMultiple: 1, padding: "edge", ...input },
      inference,
      normalization: { kind: "ct-clip-zscore", clip: [-1000, 1000], mean: 0, std: 1000 },
      output: { name: "logits", activation: "softmax" },
      labels: [
        {
          value: 1,
          name: "half",
          color: [255, 0, 0],
          category: { code: "85756007", scheme: "SCT", meaning: "Tissue" },
          type: { code: "85756007", scheme: "SCT", meaning: "Tissue" },
          rtInterpretedType: "ORGAN",
        },
      ],
      outputs: ["seg"],
    });
  const run = async (
    dims: [number, number, number],
    spacing: Vec3,
    direction: [Vec3, Vec3, Vec3],
    orientation: string | undefined,
    target: Vec3 = spacing,
  ) => {
    const manifest = manifestFor({ spacing: target, ...(orientation ? { orientation } : {}) });
    const data = new Float32Array(dims[0] * dims[1] * dims[2]);
    const labels = await segmentVolume({ dims, spacing, direction, data, seriesInstanceUID: "1.2.3" }, manifest, [
      session,
    ]);
    assert.deepEqual(labels.dims, dims, "labels on the source grid");
    return (i: number, j: number, k: number) => labels.data[(k * dims[1] + j) * dims[0] + i];
  };
  const expectEverywhere = (
    dims: [number, number, number],
    label: (i: number, j: number, k: number) => number | undefined,
    want: (i: number, j: number, k: number) => boolean,
    what: string,
  ) => {
    for (let k = 0; k < dims[2]; k++)
      for (let j = 0; j < dims[1]; j++)
        for (let i = 0; i < dims[0]; i++)
          assert.equal(label(i, j, k), want(i, j, k) ? 1 : 0, `${what}: voxel ${i},${j},${k}`);
  };

  it("an axial series: unset or LPS runs it as stored; RAS flips x (the patient's right half); SPL puts head-to-feet on x", async () => {
    const dims: [number, number, number] = [8, 6, 4];
    const axial: [Vec3, Vec3, Vec3] = [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ];
    expectEverywhere(dims, await run(dims, [1, 1, 1], axial, undefined), (i) => i >= 4, "as stored");
    expectEverywhere(dims, await run(dims, [1, 1, 1], axial, "LPS"), (i) => i >= 4, "LPS");
    expectEverywhere(
      dims,
      await run(dims, [1, 1, 1], axial, "RAS"),
      (i) => i < 4,
      "RAS: larger x is further right, smaller i",
    );
    expectEverywhere(
      dims,
      await run(dims, [1, 1, 1], axial, "SPL"),
      (_i, _j, k) => k >= 2,
      "SPL: larger x is further up",
    );
  });

  it("a sagittal series (PIR) with anisotropic spacing: LPS feeds the slices, left to right, along x, at the model's spacing", async () => {
    // slices 2 mm apart along the normal, which points right: tensor x (toward L) runs along k reversed
    const dims: [number, number, number] = [6, 4, 10];
    const sagittal: [Vec3, Vec3, Vec3] = [
      [0, 1, 0],
      [0, 0, -1],
      [-1, 0, 0],
    ];
    expectEverywhere(dims, await run(dims, [1, 1, 2], sagittal, "LPS", [2, 1, 1]), (_i, _j, k) => k < 5, "LPS");
    // the same target spacing without reorientation would resample the 6-column axis to 3 and the slices to 20
    expectEverywhere(dims, await run(dims, [1, 1, 2], sagittal, undefined, [1, 1, 2]), (i) => i >= 3, "as stored");
  });

  /** The session, counting its calls and the batch of each. */
  const counted = (s = session) => {
    const batches: number[] = [];
    const proxy = {
      inputMetadata: s.inputMetadata,
      run: (feeds: ort.InferenceSession.FeedsType) => (batches.push(feeds.image!.dims[0]!), s.run(feeds)),
    };
    return { batches, sessions: [proxy as unknown as ort.InferenceSession] };
  };
  const axial: [Vec3, Vec3, Vec3] = [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
  ];

  it("inference.stretch: an axis up to 10 % longer than the patch is one tile, not two; 0 places tiles as nnU-Net does", async () => {
    const dims: [number, number, number] = [8, 8, 34];
    const volume = {
      dims,
      spacing: [1, 1, 1] as Vec3,
      direction: axial,
      data: new Float32Array(8 * 8 * 34),
      seriesInstanceUID: "1.2.3",
    };
    const stretched = counted(),
      exact = counted();
    const a = await segmentVolume(
      volume,
      manifestFor({ spacing: [1, 1, 1] }, { patchSize: [8, 8, 32] }),
      stretched.sessions,
    );
    const b = await segmentVolume(
      volume,
      manifestFor({ spacing: [1, 1, 1] }, { patchSize: [8, 8, 32], stretch: 0 }),
      exact.sessions,
    );
    assert.deepEqual(stretched.batches, [1], "34 slices ≤ 32 × 1.1: one tile");
    assert.deepEqual(exact.batches, [1, 1], "nnU-Net: tiles at z 0 and 2");
    assert.deepEqual(a.data, b.data, "the ramp model does not depend on z, so both give the same labels");
  });

  it("inference.batchSize: a 2D model's slices go 8 to a call by default, or as many as asked", async () => {
    const dims: [number, number, number] = [8, 6, 19];
    const volume = {
      dims,
      spacing: [1, 1, 1] as Vec3,
      direction: axial,
      data: new Float32Array(8 * 6 * 19),
      seriesInstanceUID: "1.2.3",
    };
    const byDefault = counted(session2d),
      fives = counted(session2d),
      ones = counted(session2d);
    const a = await segmentVolume(volume, manifestFor({ spacing: [1, 1, 1] }, {}, 2), byDefault.sessions);
    const b = await segmentVolume(volume, manifestFor({ spacing: [1, 1, 1] }, { batchSize: 5 }, 2), fives.sessions);
    const c = await segmentVolume(volume, manifestFor({ spacing: [1, 1, 1] }, { batchSize: 1 }, 2), ones.sessions);
    assert.deepEqual(byDefault.batches, [8, 8, 3]);
    assert.deepEqual(fives.batches, [5, 5, 5, 4]);
    assert.equal(ones.batches.length, 19);
    assert.deepEqual(a.data, c.data);
    assert.deepEqual(b.data, c.data);
    assert.ok(
      c.data.every((v, i) => v === (i % 8 >= 4 ? 1 : 0)),
      "every slice: the half with larger x",
    );
  });
});
