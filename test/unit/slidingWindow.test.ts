import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type Dims,
  flipInto,
  gaussianImportance,
  type Predict,
  slidingWindow,
  tileStarts,
  type WindowOptions,
} from "../../src/inference/slidingWindow.js";

const random = (n: number, seed: number) => {
  let x = seed;
  return Float32Array.from({ length: n }, () => ((x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32) * 100 - 50);
};
/** The whole image's blended logits, [C, Z, Y, X], collected from the streamed slabs. */
async function slidingWindowWhole(
  image: Float32Array,
  dims: Dims,
  channels: number,
  options: WindowOptions,
  predict: Predict,
): Promise<Float32Array> {
  const plane = dims[0] * dims[1],
    vol = plane * dims[2];
  const out = new Float32Array(channels * vol);
  await slidingWindow(image, dims, channels, options, predict, (z0, z1, logits, stride) => {
    for (let c = 0; c < channels; c++)
      out.set(logits.subarray(c * stride, c * stride + (z1 - z0) * plane), c * vol + z0 * plane);
  });
  return out;
}
const flip = (a: Float32Array, dims: Dims, channels: number, axes: number[]) =>
  flipInto(a, new Float32Array(a.length), dims, channels, axes);
const close = (a: Float32Array, b: Float32Array, tol: number) => {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  assert.ok(worst <= tol, `max difference ${worst}`);
};

describe("sliding window", () => {
  it("places tiles as nnU-Net does: evenly, first at 0, last at the edge, step at most (1 - overlap) × patch", () => {
    assert.deepEqual(tileStarts(10, 4, 0.5), [0, 2, 4, 6]);
    assert.deepEqual(tileStarts(300, 128, 0.5), [0, 57, 115, 172]);
    assert.deepEqual(tileStarts(128, 128, 0.5), [0]);
    assert.deepEqual(tileStarts(100, 128, 0.5), [0], "smaller than the patch: one tile (the caller pads)");
    assert.deepEqual(tileStarts(20, 8, 0), [0, 6, 12]);
    assert.deepEqual(tileStarts(5, 1, 0.5), [0, 1, 2, 3, 4], "one-slice tiles (2D models): each slice once, not twice");
  });
  it("weights with a Gaussian of sigma patch/8, peak 10 at the centre, nowhere zero", () => {
    const g = gaussianImportance([9, 7, 5]);
    assert.equal(Math.max(...g), 10);
    assert.equal(g[(2 * 7 + 3) * 9 + 4], 10, "the centre voxel");
    assert.ok(g.every((v) => v > 0));
    assert.equal(g[0], g[g.length - 1], "symmetric");
  });
  it("flips along any axes, and flipping twice gives the input back", () => {
    const dims: Dims = [4, 3, 2];
    const a = random(2 * 24, 1);
    assert.deepEqual(flip(flip(a, dims, 2, [0, 2]), dims, 2, [0, 2]), a);
    assert.equal(flip(a, dims, 2, [0])[0], a[3], "x flipped: first voxel is the row's last");
  });
  for (const blend of ["gaussian", "constant"] as const) {
    it(`with ${blend} blending, tiles of a model that copies its input blend back to the input exactly, mirrored or not`, async () => {
      const dims: Dims = [13, 11, 9];
      const image = random(13 * 11 * 9, 7);
      const copy = async (tile: Float32Array) => Float32Array.from(tile);
      close(
        await slidingWindowWhole(image, dims, 1, { patch: [6, 5, 4], overlap: 0.5, blend, mirrorAxes: [] }, copy),
        image,
        1e-4,
      );
      close(
        await slidingWindowWhole(
          image,
          dims,
          1,
          { patch: [6, 5, 4], overlap: 0.5, blend, mirrorAxes: [0, 1, 2] },
          copy,
        ),
        image,
        1e-4,
      );
    });
  }
  it("averages mirrored passes: a model biased by its x position comes out biased by the mean position", async () => {
    const dims: Dims = [8, 6, 5];
    const image = random(8 * 6 * 5, 3);
    const patch: Dims = [4, 3, 5];
    // logits = input + the voxel's x index inside the tile: not mirror-equivariant
    const biased = async (tile: Float32Array) => tile.map((v, i) => v + (i % patch[0]));
    const out = await slidingWindowWhole(
      image,
      dims,
      1,
      { patch, overlap: 0.5, blend: "gaussian", mirrorAxes: [0] },
      biased,
    );
    close(
      out,
      image.map((v) => v + (patch[0] - 1) / 2),
      1e-4,
    );
  });
  it("counts every tile and mirroring: (tiles per axis product) × 2^mirror axes calls", async () => {
    let calls = 0;
    await slidingWindowWhole(
      new Float32Array(10 * 10 * 10),
      [10, 10, 10],
      2,
      { patch: [4, 4, 10], overlap: 0.5, blend: "gaussian", mirrorAxes: [0, 1] },
      async (t) => {
        calls++;
        return new Float32Array(2 * t.length);
      },
    );
    assert.equal(calls, 4 * 4 * 1 * 4);
  });
  it("batches tiles and mirrorings: the same logits as one at a time, in ceil(items / batch) calls", async () => {
    const dims: Dims = [13, 11, 9];
    const image = random(13 * 11 * 9, 5);
    const patch: Dims = [6, 5, 4];
    // logits depend on the voxel's place in its tile, so a tile given the wrong slot of the batch would show
    const model = (calls: number[]) => async (tiles: Float32Array, n: number) => {
      calls.push(n);
      const out = new Float32Array(2 * tiles.length);
      const vol = patch[0] * patch[1] * patch[2];
      for (let b = 0; b < n; b++)
        for (let t = 0; t < vol; t++) {
          out[2 * b * vol + t] = tiles[b * vol + t]! * 2 + (t % 7);
          out[(2 * b + 1) * vol + t] = -tiles[b * vol + t]! + (t % 3);
        }
      return out;
    };
    const one: number[] = [],
      five: number[] = [];
    const options = { patch, overlap: 0.5, blend: "gaussian" as const, mirrorAxes: [0, 2] as (0 | 2)[] };
    const a = await slidingWindowWhole(image, dims, 2, options, model(one));
    const b = await slidingWindowWhole(image, dims, 2, { ...options, batch: 5 }, model(five));
    const items = 4 * 4 * 4 * 4; // 4 tiles along each of x, y and z × 4 mirrorings
    assert.equal(one.length, items);
    assert.deepEqual(five, [...Array(Math.floor(items / 5)).fill(5), items % 5]);
    close(b, a, 1e-5);
  });
  it("streams: slabs come in order, each slice once and final, the first before the last tile has run", async () => {
    const dims: Dims = [10, 8, 30];
    const image = random(10 * 8 * 30, 9);
    const options = { patch: [6, 6, 8] as Dims, overlap: 0.5, blend: "gaussian" as const, mirrorAxes: [] };
    let calls = 0;
    const predict = async (tiles: Float32Array) => (calls++, tiles.map((v, i) => v * 3 + (i % 5)));
    const whole = await slidingWindowWhole(image, dims, 1, options, predict);
    const total = calls;
    calls = 0;
    const slabs: { z0: number; z1: number; at: number }[] = [];
    await slidingWindow(image, dims, 1, options, predict, (z0, z1, logits, stride) => {
      slabs.push({ z0, z1, at: calls });
      assert.ok(stride < dims[0] * dims[1] * dims[2], "the accumulators are smaller than the image");
      close(logits.subarray(0, (z1 - z0) * 80), whole.subarray(z0 * 80, z1 * 80), 1e-5); // channel 0 starts at 0
    });
    assert.equal(slabs[0]!.z0, 0);
    for (let i = 1; i < slabs.length; i++) assert.equal(slabs[i]!.z0, slabs[i - 1]!.z1, "contiguous, in order");
    assert.equal(slabs.at(-1)!.z1, 30);
    assert.ok(slabs[0]!.at < total, `the first slab came after ${slabs[0]!.at} of ${total} calls`);
  });
});
