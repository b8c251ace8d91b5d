import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { flip, gaussianImportance, slidingWindow, tileStarts, type Dims } from "../../src/inference/slidingWindow.js";

const random = (n: number, seed: number) => {
  let x = seed;
  return Float32Array.from({ length: n }, () => ((x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32) * 100 - 50);
};
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
      close(await slidingWindow(image, dims, 1, { patch: [6, 5, 4], overlap: 0.5, blend, mirrorAxes: [] }, copy), image, 1e-4);
      close(await slidingWindow(image, dims, 1, { patch: [6, 5, 4], overlap: 0.5, blend, mirrorAxes: [0, 1, 2] }, copy), image, 1e-4);
    });
  }
  it("averages mirrored passes: a model biased by its x position comes out biased by the mean position", async () => {
    const dims: Dims = [8, 6, 5];
    const image = random(8 * 6 * 5, 3);
    const patch: Dims = [4, 3, 5];
    // logits = input + the voxel's x index inside the tile: not mirror-equivariant
    const biased = async (tile: Float32Array) => tile.map((v, i) => v + (i % patch[0]));
    const out = await slidingWindow(image, dims, 1, { patch, overlap: 0.5, blend: "gaussian", mirrorAxes: [0] }, biased);
    close(out, image.map((v) => v + (patch[0] - 1) / 2), 1e-4);
  });
  it("counts every tile and mirroring: (tiles per axis product) × 2^mirror axes calls", async () => {
    let calls = 0;
    await slidingWindow(new Float32Array(10 * 10 * 10), [10, 10, 10], 2, { patch: [4, 4, 10], overlap: 0.5, blend: "gaussian", mirrorAxes: [0, 1] }, async (t) => {
      calls++;
      return new Float32Array(2 * t.length);
    });
    assert.equal(calls, 4 * 4 * 1 * 4);
  });
});
