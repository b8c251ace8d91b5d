import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Dims, HALF_TO_FLOAT, type Predict, slidingWindow, toHalf } from "../../src/inference/slidingWindow.js";

/** Every voxel's argmax over the blended logits, and the margin between its two best classes. */
async function argmax(accumulator: "float32" | "float16", dims: Dims, channels: number, predict: Predict) {
  const plane = dims[0] * dims[1];
  const labels = new Uint8Array(plane * dims[2]);
  const margin = new Float32Array(plane * dims[2]);
  const image = new Float32Array(plane * dims[2]).map((_, i) => Math.sin(i * 0.013) * 3 + Math.cos(i * 0.0007));
  const options = { patch: [16, 16, 8] as Dims, overlap: 0.5, blend: "gaussian" as const, mirrorAxes: [], accumulator };
  await slidingWindow(image, dims, channels, options, predict, (z, y, logits, offset, stride) => {
    for (let x = 0; x < dims[0]; x++) {
      const v = offset + x,
        at = z * plane + y * dims[0] + x;
      let best = -Infinity,
        second = -Infinity,
        top = 0;
      for (let c = 0; c < channels; c++) {
        const l = logits[c * stride + v]!;
        if (l > best) (second = best), (best = l), (top = c);
        else if (l > second) second = l;
      }
      labels[at] = top;
      margin[at] = best - second;
    }
  });
  return { labels, margin };
}

describe("float16 band accumulator", () => {
  it("converts every half exactly both ways, and rounds float32 to the nearest half", () => {
    for (let h = 0; h < 65536; h++) {
      const f = HALF_TO_FLOAT[h]!;
      if (!Number.isNaN(f)) assert.equal(toHalf(f), h, `half 0x${h.toString(16)}`);
    }
    assert.equal(HALF_TO_FLOAT[toHalf(1 + 2 ** -12)], 1, "below half an ulp: down");
    assert.equal(HALF_TO_FLOAT[toHalf(1 + 3 * 2 ** -12)], 1 + 2 ** -10, "above half an ulp: up");
    assert.equal(HALF_TO_FLOAT[toHalf(70000)], Infinity, "past 65504: Infinity");
    assert.equal(HALF_TO_FLOAT[toHalf(3e-6)]! / 3e-6 - 1 < 0.02, true, "subnormal");
    assert.ok(Number.isNaN(HALF_TO_FLOAT[toHalf(NaN)]!));
  });

  it("gives the float32 path's labels wherever the two best classes' blended logits are apart by more than its error", async () => {
    // a network whose logits are smooth functions of the tile's content and position: tiles disagree at overlaps,
    // as a real network's do, so the blending matters
    const channels = 12;
    const predict: Predict = async (tiles, n, [tx, ty, tz]) => {
      const vol = tx * ty * tz;
      const out = new Float32Array(n * channels * vol);
      for (let b = 0; b < n; b++)
        for (let c = 0; c < channels; c++)
          for (let v = 0; v < vol; v++) {
            const x = tiles[b * vol + v]!,
              edge = (v % tx) / tx;
            out[(b * channels + c) * vol + v] = Math.sin(x * (c + 1) * 0.7 + c) * 8 + edge * (c % 3);
          }
      return out;
    };
    const dims: Dims = [40, 36, 20];
    const exact = await argmax("float32", dims, channels, predict);
    const half = await argmax("float16", dims, channels, predict);
    let differ = 0,
      differAboveBound = 0;
    // float16 sums carry a relative error of 2^-11 per rounding; a few roundings per voxel, logits up to ~10
    const bound = 10 * 8 * 2 ** -11;
    for (let v = 0; v < exact.labels.length; v++)
      if (exact.labels[v] !== half.labels[v]) {
        differ++;
        if (exact.margin[v]! > bound) differAboveBound++;
      }
    assert.equal(differAboveBound, 0, `${differ} labels differ, ${differAboveBound} with a margin over ${bound}`);
    // this network's 12 sinusoids make near-ties common (0.2 % of voxels within the bound); a trained one has fewer
    assert.ok(differ <= exact.labels.length * 1e-2, `${differ} of ${exact.labels.length} labels differ`);
  });
});
