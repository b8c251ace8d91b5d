import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { f16round, f16roundFromFloat32, roundHalfEven } from "../../src/inference/nnunet/half.js";
import {
  computeNewShape,
  resampleToShape,
  resizeLikeSkimage,
  type Shape3,
  separateZAxis,
} from "../../src/inference/nnunet/resample.js";
import { exec } from "../helpers/tools.js";

/**
 * scipy's own answer for the same array: skimage 0.19's resize is scipy.ndimage.zoom(grid_mode=True, mode='nearest')
 * then a clip to the input's range, and nnU-Net's separate-z path ends in map_coordinates(order=0, mode='nearest').
 */
async function scipy(code: string): Promise<Float64Array> {
  const script = `import numpy as np, scipy.ndimage as ndi, sys
rng = np.random.default_rng(7)
def resize(a, shape, order):
    out = ndi.zoom(a, [n / o for n, o in zip(shape, a.shape)], order=order, mode='nearest', grid_mode=True)
    return np.clip(out, a.min(), a.max())
${code}
sys.stdout.buffer.write(np.ascontiguousarray(out, dtype=np.float64).tobytes())`;
  const { stdout } = await exec("/usr/bin/python3", ["-c", script], { encoding: "buffer", maxBuffer: 1 << 26 });
  const b = stdout as unknown as Buffer;
  return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

async function randomArray(shape: Shape3): Promise<Float64Array> {
  return scipy(`out = rng.normal(size=${JSON.stringify(shape)}) * 100`);
}

function maxAbsDiff(a: Float64Array, b: Float64Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe("nnU-Net resampling against scipy", () => {
  for (const [shape, newShape, order] of [
    [[7, 11, 13], [9, 8, 20], 3],
    [[5, 16, 16], [5, 23, 9], 3],
    [[7, 11, 13], [9, 8, 20], 1],
    [[1, 12, 10], [1, 7, 19], 3],
  ] as [Shape3, Shape3, 1 | 3][]) {
    it(`zoom order ${order} ${shape} -> ${newShape} equals scipy.ndimage.zoom + clip to 1e-9`, async () => {
      const src = await randomArray(shape);
      const expected = await scipy(
        `a = rng.normal(size=${JSON.stringify(shape)}) * 100\nout = resize(a, ${JSON.stringify(newShape)}, ${order})`,
      );
      const got = resizeLikeSkimage(src, shape, newShape, order);
      assert.ok(maxAbsDiff(got, expected) < 1e-9, `max diff ${maxAbsDiff(got, expected)}`);
    });
  }

  it("separate z: in-plane order 3 per slice, nearest along the thick axis (axis 1 here), as default_resampling.py:143-189", async () => {
    const shape: Shape3 = [12, 5, 14];
    const newShape: Shape3 = [9, 7, 17];
    const src = await randomArray(shape);
    const expected = await scipy(`a = rng.normal(size=${JSON.stringify(shape)}) * 100
mid = np.stack([resize(a[:, s], (9, 17), 3) for s in range(5)], 1)
rows, cols, dims = 9, 7, 17
m = np.mgrid[:rows, :cols, :dims].astype(float)
scale = np.array([12 / 9 * 0 + mid.shape[0] / rows, mid.shape[1] / cols, mid.shape[2] / dims])
coords = np.array([scale[i] * (m[i] + 0.5) - 0.5 for i in range(3)])
out = ndi.map_coordinates(mid, coords, order=0, mode='nearest')`);
    assert.equal(separateZAxis([1, 4, 1], [1.2, 3, 1]), 1);
    const got = resampleToShape(src, shape, newShape, [1, 4, 1], [1.2, 3, 1], 3, 0);
    assert.ok(maxAbsDiff(got, expected) < 1e-9, `max diff ${maxAbsDiff(got, expected)}`);
  });

  it("chooses the separate axis as nnU-Net does", () => {
    assert.equal(separateZAxis([4, 0.9765625, 0.9765625], [5, 2, 2]), 0); // current spacing anisotropic
    assert.equal(separateZAxis([3, 3, 3], [3.6, 3.3, 3.3]), undefined);
    assert.equal(separateZAxis([1, 1, 1], [4, 1, 1]), 0); // only the target is anisotropic
    assert.equal(separateZAxis([0.24, 1.25, 1.25], [1, 1, 1]), undefined); // two axes share the largest spacing
    assert.equal(separateZAxis([3, 3, 3], [3, 3, 3], true), undefined);
  });

  it("computes the target shape with Python's round (halves to even)", () => {
    assert.deepEqual(computeNewShape([28, 84, 88], [3, 3, 3], [3.6, 3.3, 3.3]), [23, 76, 80]);
    assert.deepEqual(computeNewShape([10, 176, 240], [4, 0.9765625, 0.9765625], [5, 2, 2]), [8, 86, 117]);
    assert.equal(roundHalfEven(2.5), 2);
    assert.equal(roundHalfEven(3.5), 4);
  });

  it("rounds to half precision as torch.half does", async () => {
    const values = [0.1, 1 / 3, 65519, 65520, 1e-8, 3e-8, 6e-8, -2.000976, 1234.567, 2 ** -24];
    const expected = await scipy(`out = np.array(${JSON.stringify(values)}, dtype=np.float32).astype(np.float16)`);
    assert.deepEqual(
      values.map((v) => f16round(Math.fround(v))),
      Array.from(expected),
    );
  });

  it("rounds doubles to half as numpy's float64 -> float16 cast does (one rounding)", async () => {
    let seed = 3;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const values = Array.from({ length: 4000 }, () => (rand() - 0.5) * 2 ** Math.floor(rand() * 44 - 28));
    // exact ties and near-ties of the half grid
    values.push(1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -40, 2 + 2 ** -10, 65519.99, 65520, -3.0009765625);
    const out = await scipy(`out = np.array(${JSON.stringify(values)}, dtype=np.float64).astype(np.float16)`);
    for (const [i, v] of values.entries()) assert.equal(f16round(v), out[i], `${v}`);
  });

  it("rounds float32 values to half on their bits exactly as the general rounding does", () => {
    let seed = 1;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let n = 0; n < 200000; n++) {
      const x = Math.fround((rand() - 0.5) * 2 ** Math.floor(rand() * 44 - 28));
      assert.equal(f16roundFromFloat32(x), f16round(x), `${x}`);
    }
    // ties go to even; the largest values round to infinity as torch.half does
    for (const x of [1 + 2 ** -11, 1 + 3 * 2 ** -11, 65519, 65520, 2 ** -14 * (1 + 2 ** -11), -(1 + 2 ** -11)])
      assert.equal(f16roundFromFloat32(Math.fround(x)), f16round(Math.fround(x)), `${x}`);
  });
});
