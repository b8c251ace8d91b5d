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
/** The whole image's blended logits, [C, Z, Y, X], collected from the streamed rows. */
async function slidingWindowWhole(
  image: Float32Array,
  dims: Dims,
  channels: number,
  options: WindowOptions,
  predict: Predict,
): Promise<Float32Array> {
  const [nx, ny, nz] = dims;
  const vol = nx * ny * nz;
  const out = new Float32Array(channels * vol);
  await slidingWindow(image, dims, channels, options, predict, (z, y, logits, offset, stride) => {
    for (let c = 0; c < channels; c++)
      out.set(logits.subarray(offset + c * stride, offset + c * stride + nx), c * vol + (z * ny + y) * nx);
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
  it("streams: every row once and final, a slice's rows in increasing y, the first before the last tile has run", async () => {
    const dims: Dims = [10, 8, 30];
    const [nx, ny, nz] = dims;
    const image = random(nx * ny * nz, 9);
    const options = { patch: [6, 6, 8] as Dims, overlap: 0.5, blend: "gaussian" as const, mirrorAxes: [] };
    let calls = 0;
    const predict = async (tiles: Float32Array) => (calls++, tiles.map((v, i) => v * 3 + (i % 5)));
    const whole = await slidingWindowWhole(image, dims, 1, options, predict);
    const total = calls;
    calls = 0;
    const rows: { z: number; y: number; at: number }[] = [];
    await slidingWindow(image, dims, 1, options, predict, (z, y, logits, offset) => {
      rows.push({ z, y, at: calls });
      const at = (z * ny + y) * nx;
      close(logits.subarray(offset, offset + nx), whole.subarray(at, at + nx), 1e-5); // channel 0 starts at offset
    });
    assert.equal(rows.length, ny * nz, "as many rows as the image has");
    assert.equal(new Set(rows.map(({ z, y }) => z * ny + y)).size, ny * nz, "each row once");
    for (let z = 0; z < nz; z++) {
      const ys = rows.filter((r) => r.z === z).map((r) => r.y);
      assert.deepEqual(
        ys,
        [...ys].sort((a, b) => a - b),
        `slice ${z}'s rows in increasing y`,
      );
    }
    assert.ok(rows[0]!.at < total, `the first row came after ${rows[0]!.at} of ${total} calls`);
  });
  it("finishes rows as well as slices: rows of a band come before the band's last row of tiles has run", async () => {
    // 3 tiles along y and one along x and z per band: slice 0's first rows are final after the first tile
    const dims: Dims = [6, 12, 8];
    const order: string[] = [];
    let calls = 0;
    await slidingWindow(
      random(6 * 12 * 8, 4),
      dims,
      1,
      { patch: [6, 6, 8], overlap: 0.5, blend: "constant", mirrorAxes: [] },
      async (t) => (calls++, Float32Array.from(t)),
      (z, y) => order.push(`${calls}:${z},${y}`),
    );
    // tiles start at y = 0, 3, 6: rows 0–2 are final after the first, 3–5 after the second, 6–11 after the third
    assert.deepEqual(
      order.filter((o) => /:0,[036]$/.test(o)),
      ["1:0,0", "2:0,3", "3:0,6"],
    );
  });
  it("blends each voxel's tiles in the order whole slices did: the logits equal a whole-image accumulation to the bit", async () => {
    // the accumulation nnU-Net's float32 path makes, written out here for the whole image at once: tiles in z, then
    // y, then x order, each voxel's weighted logits and weights summed, then divided
    const dims: Dims = [23, 19, 17];
    const [nx, ny, nz] = dims;
    const patch: Dims = [8, 7, 6];
    const channels = 3;
    const image = random(nx * ny * nz, 11);
    const tileVol = patch[0] * patch[1] * patch[2];
    const predict = async (tile: Float32Array) => {
      const out = new Float32Array(channels * tileVol);
      for (let c = 0; c < channels; c++)
        for (let v = 0; v < tileVol; v++) out[c * tileVol + v] = Math.sin(tile[v]! * (c + 1)) * 5 + (v % 11) * 0.1;
      return out;
    };
    const vol = nx * ny * nz;
    const sum = new Float32Array(channels * vol),
      weights = new Float32Array(vol);
    const w = gaussianImportance(patch);
    for (const z0 of tileStarts(nz, patch[2], 0.5))
      for (const y0 of tileStarts(ny, patch[1], 0.5))
        for (const x0 of tileStarts(nx, patch[0], 0.5)) {
          const tile = new Float32Array(tileVol);
          for (let k = 0; k < patch[2]; k++)
            for (let j = 0; j < patch[1]; j++)
              for (let i = 0; i < patch[0]; i++)
                tile[(k * patch[1] + j) * patch[0] + i] = image[((z0 + k) * ny + y0 + j) * nx + x0 + i]!;
          const logits = await predict(tile);
          for (let k = 0; k < patch[2]; k++)
            for (let j = 0; j < patch[1]; j++)
              for (let i = 0; i < patch[0]; i++) {
                const t = (k * patch[1] + j) * patch[0] + i,
                  v = ((z0 + k) * ny + y0 + j) * nx + x0 + i;
                weights[v]! += w[t]!;
                for (let c = 0; c < channels; c++) sum[c * vol + v]! += logits[c * tileVol + t]! * w[t]!;
              }
        }
    for (let c = 0; c < channels; c++) for (let v = 0; v < vol; v++) sum[c * vol + v]! /= weights[v]!;
    const streamed = await slidingWindowWhole(
      image,
      dims,
      channels,
      { patch, overlap: 0.5, blend: "gaussian", mirrorAxes: [] },
      predict,
    );
    assert.deepEqual(streamed, sum);
  });
});
