import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { axisMapping, invertMapping, orientationCode, permuteAxes } from "../../src/inference/reorient.js";
import type { Vec3 } from "../../src/volume/geometry.js";

describe("reorientation to a model's axes", () => {
  it("names a grid's axes by the patient direction each increases toward", () => {
    assert.equal(
      orientationCode([
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ]),
      "LPS",
      "axial, feet to head",
    );
    assert.equal(
      orientationCode([
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, -1],
      ]),
      "LPI",
      "axial, head to feet",
    );
    assert.equal(
      orientationCode([
        [0, 1, 0],
        [0, 0, -1],
        [-1, 0, 0],
      ]),
      "PIR",
      "sagittal",
    );
    assert.equal(
      orientationCode([
        [1, 0, 0],
        [0, 0, -1],
        [0, 1, 0],
      ]),
      "LIP",
      "coronal",
    );
    const c = Math.cos(0.3),
      s = Math.sin(0.3);
    assert.equal(
      orientationCode([
        [c, s, 0],
        [-s, c, 0],
        [0, 0, 1],
      ]),
      "LPS",
      "17° oblique: the nearest code",
    );
    // 45°: both in-plane axes are as close to L as to P; they still get one each
    const h = Math.SQRT1_2;
    assert.equal(
      new Set(
        orientationCode([
          [h, h, 0],
          [-h, h, 0],
          [0, 0, 1],
        ]),
      ).size,
      3,
    );
  });
  it("permutes and flips whole voxels: known values for LPS → RAS and sagittal PIR → LPS", () => {
    const dims: [number, number, number] = [2, 3, 4];
    const data = Float32Array.from({ length: 24 }, (_, i) => i);
    const at = (d: Float32Array, n: [number, number, number], i: number, j: number, k: number) =>
      d[(k * n[1] + j) * n[0] + i];
    const ras = permuteAxes(data, dims, axisMapping("LPS", "RAS"));
    assert.deepEqual(ras.dims, [2, 3, 4]);
    assert.equal(at(ras.data, ras.dims, 0, 0, 0), at(data, dims, 1, 2, 0));
    assert.equal(at(ras.data, ras.dims, 1, 2, 3), at(data, dims, 0, 0, 3));
    // PIR: x toward P, y toward I, z toward R. In LPS, x (toward L) runs along input z reversed, y (P) along input x,
    // z (S) along input y reversed
    const lps = permuteAxes(data, dims, axisMapping("PIR", "LPS"));
    assert.deepEqual(lps.dims, [4, 2, 3]);
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 2; j++)
        for (let k = 0; k < 3; k++) assert.equal(at(lps.data, lps.dims, i, j, k), at(data, dims, j, 2 - k, 3 - i));
  });
  it("undoes every one of the 48 mappings exactly, labels included", () => {
    const dims: [number, number, number] = [3, 4, 5];
    const labels = Uint8Array.from({ length: 60 }, (_, i) => i);
    const codes: string[] = [];
    for (const p of [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ])
      for (let f = 0; f < 8; f++) codes.push(p.map((a, t) => ((f >> t) & 1 ? "RAI" : "LPS")[a]).join(""));
    assert.equal(new Set(codes).size, 48);
    for (const to of codes) {
      const m = axisMapping("LPS", to);
      const there = permuteAxes(labels, dims, m);
      const back = permuteAxes(there.data, there.dims, invertMapping(m));
      assert.deepEqual(back.dims, dims);
      assert.deepEqual(back.data, labels, to);
      const direction = m.perm.map((a, t) => [0, 1, 2].map((q) => (q === a ? (m.flip[t] ? -1 : 1) : 0))) as [
        Vec3,
        Vec3,
        Vec3,
      ];
      assert.equal(orientationCode(direction), to, "the mapping's result has the axes asked for");
    }
  });
});
