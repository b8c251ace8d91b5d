import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { axisWeights } from "../../src/inference/resample.js";
import { type PreprocessRecord, SourceLabeller } from "../../src/inference/segmentVolume.js";
import { type Dims, slidingWindow } from "../../src/inference/slidingWindow.js";

const random = (n: number, seed: number) => {
  let x = seed;
  return Float32Array.from({ length: n }, () => (x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32);
};

/**
 * The source grid's labels from the whole model grid's probabilities ([C, Z, Y, X]) at once, as the labeller did
 * when it took whole slices: per class, the two model slices interpolated along z (stored as float32), then
 * bilinearly in the plane; the first class with the highest value wins.
 */
function wholeGridLabels(probs: Float32Array, record: PreprocessRecord, values: number[]): Uint8Array {
  const [sx, sy, sz] = record.sourceDims;
  const [mx, my, mz] = record.modelDims;
  const wx = axisWeights(mx, sx),
    wy = axisWeights(my, sy),
    wz = axisWeights(mz, sz);
  const plane = mx * my,
    vol = plane * mz;
  const labels = new Uint8Array(sx * sy * sz);
  const zPlane = new Float32Array(plane);
  for (let k = 0; k < sz; k++) {
    const best = new Float32Array(sx * sy).fill(-1);
    const w = wz.w1[k]!;
    for (let c = 0; c <= values.length; c++) {
      for (let v = 0; v < plane; v++)
        zPlane[v] = probs[c * vol + wz.i0[k]! * plane + v]! * (1 - w) + probs[c * vol + wz.i1[k]! * plane + v]! * w;
      for (let j = 0; j < sy; j++)
        for (let i = 0; i < sx; i++) {
          const at = (y: number, x: number) => zPlane[y * mx + x]!;
          const u = wx.w1[i]!,
            t = wy.w1[j]!;
          const q =
            (at(wy.i0[j]!, wx.i0[i]!) * (1 - u) + at(wy.i0[j]!, wx.i1[i]!) * u) * (1 - t) +
            (at(wy.i1[j]!, wx.i0[i]!) * (1 - u) + at(wy.i1[j]!, wx.i1[i]!) * u) * t;
          if (q > best[j * sx + i]!) {
            best[j * sx + i] = q;
            labels[(k * sy + j) * sx + i] = c === 0 ? 0 : values[c - 1]!;
          }
        }
    }
  }
  return labels;
}

describe("source labeller", () => {
  for (const sourceDims of [
    [37, 29, 23],
    [11, 9, 6],
  ] as Dims[])
    it(`fed model rows as the sliding window finishes them, labels a ${sourceDims.join("×")} source grid as from whole slices, letting rows go`, async () => {
      const modelDims: Dims = [20, 17, 13];
      const record: PreprocessRecord = { sourceDims, modelDims, paddedDims: modelDims };
      const values = [3, 7, 9, 200];
      const channels = values.length + 1;
      const [mx, my, mz] = modelDims;
      const vol = mx * my * mz;
      const probs = random(channels * vol, 5);
      // the order rows come in: as a sliding window of 8×6×5 tiles finishes them
      const order: [number, number][] = [];
      await slidingWindow(
        new Float32Array(vol),
        modelDims,
        1,
        { patch: [8, 6, 5], overlap: 0.5, blend: "gaussian", mirrorAxes: [] },
        async (t) => new Float32Array(t.length),
        (z, y) => order.push([z, y]),
      );
      assert.equal(order.length, my * mz);
      const labeller = new SourceLabeller(record, values);
      let made = 0;
      for (const [z, y] of order) {
        const row = labeller.free.pop() ?? (made++, new Float32Array(channels * mx));
        for (let c = 0; c < channels; c++)
          row.set(probs.subarray(c * vol + (z * my + y) * mx, c * vol + (z * my + y + 1) * mx), c * mx);
        labeller.add(z, y, row);
      }
      assert.deepEqual(labeller.labels.data, wholeGridLabels(probs, record, values));
      assert.ok(new Set(labeller.labels.data).size === channels, "every class wins somewhere");
      assert.ok(made < (my * mz) / 2, `${made} row arrays made for ${my * mz} rows: the rest were let go and reused`);
    });
});
