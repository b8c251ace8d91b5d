import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bodyOutlineReference, fillSliceHolesReference } from "../../harness/bodyOutlineReference.js";
import { blobCt, patientCt, seededRandom } from "../../harness/syntheticCt.js";
import { DiscMorphology } from "../../src/inference/discMorphology.js";
import { applyExternal, bodyOutline, type ExternalOptions, fillSliceHoles } from "../../src/inference/external.js";

type Dims = [number, number, number];

/** Voxels where two masks differ, with the first few positions for the message. */
function differences(a: Uint8Array, b: Uint8Array, [nx, ny]: Dims): { count: number; first: string[] } {
  let count = 0;
  const first: string[] = [];
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    count++;
    if (first.length < 5) first.push(`(${i % nx}, ${Math.floor(i / nx) % ny}, ${Math.floor(i / (nx * ny))})`);
  }
  return { count, first };
}

const options = (smoothMm: number, openingMm: number): ExternalOptions => ({
  label: 1,
  thresholdHu: -500,
  smoothMm,
  openingMm,
  combine: "replace",
});

describe("the body outline equals the previous implementation's voxel for voxel", () => {
  it("on a patient with lungs, gas, arms, a shell, a table and specks, at ct-body's settings", () => {
    const dims: Dims = [150, 120, 14];
    const hu = patientCt(dims, 3);
    const spacing = [0.977, 0.977, 2.5];
    const want = bodyOutlineReference(hu, dims, spacing, options(1, 5));
    const got = bodyOutline(hu, dims, spacing, options(1, 5));
    const d = differences(got, want, dims);
    assert.equal(d.count, 0, `differs at ${d.first.join(" ")}`);
    assert.ok(want.reduce((n, v) => n + v, 0) > 0.2 * want.length, "the patient is in the outline");
  });

  it("on random blobs over spacings, radii and sizes, ties on the disc's edge and rows of odd widths included", () => {
    const rnd = seededRandom(19);
    const cases: { dims: Dims; spacing: number[]; smoothMm: number; openingMm: number }[] = [
      { dims: [40, 30, 4], spacing: [1, 1, 3], smoothMm: 1, openingMm: 5 }, // 3-4-5: offsets exactly on the edge
      { dims: [64, 32, 3], spacing: [0.5, 0.5, 1], smoothMm: 1, openingMm: 20 }, // 40 pixels: shifts past a word
      { dims: [33, 47, 3], spacing: [1, 1, 1], smoothMm: 0, openingMm: 0 }, // no smoothing, no opening
      { dims: [97, 13, 3], spacing: [0.7, 1.9, 2], smoothMm: 2.5, openingMm: 3 },
    ];
    for (let c = 0; c < 16; c++) {
      const dims: Dims = [8 + Math.floor(rnd() * 90), 8 + Math.floor(rnd() * 70), 1 + Math.floor(rnd() * 5)];
      const spacing = [0.3 + rnd() * 2, 0.3 + rnd() * 2, 1 + rnd() * 3];
      cases.push({ dims, spacing, smoothMm: [0, 1, 2.5][c % 3]!, openingMm: [0.5, 2, 3.3, 5, 9][c % 5]! });
    }
    cases.forEach(({ dims, spacing, smoothMm, openingMm }, c) => {
      const hu = blobCt(dims, 100 + c);
      const want = bodyOutlineReference(hu, dims, spacing, options(smoothMm, openingMm));
      const got = bodyOutline(hu, dims, spacing, options(smoothMm, openingMm));
      const d = differences(got, want, dims);
      const what = `case ${c}: ${dims.join("×")} at ${spacing.map((s) => s.toFixed(3)).join("×")} mm, opening ${openingMm} mm`;
      assert.equal(d.count, 0, `${what}: differs at ${d.first.join(" ")}`);
    });
  });

  it("on slices of tissue to their edges, rows a whole number of words wide (runs that end at the row's end)", () => {
    for (const dims of [
      [64, 20, 2],
      [32, 7, 1],
    ] as Dims[]) {
      const hu = new Float32Array(dims[0] * dims[1] * dims[2]).fill(40);
      hu[dims[0] + 3] = -1000; // a hole, filled
      const want = bodyOutlineReference(hu, dims, [1, 1, 1], options(1, 3));
      assert.equal(differences(bodyOutline(hu, dims, [1, 1, 1], options(1, 3)), want, dims).count, 0, dims.join("×"));
      assert.equal(
        want.reduce((n, v) => n + v, 0),
        want.length,
      );
    }
  });

  it("compares the smoothed HU as the float32 it was stored as: a mean within half a float32 step of the threshold is not above it", () => {
    // rows one float32 step above -500 between rows at -500: their 3×3 mean is -500 + step/3, -500 as a float32
    const dims: Dims = [20, 21, 3];
    const hu = new Float32Array(20 * 21 * 3).fill(-500);
    const step = Math.fround(-500 + 2 ** -15);
    assert.ok(step > -500);
    for (let k = 0; k < 3; k++) for (let j = 1; j < 21; j += 2) hu.fill(step, (k * 21 + j) * 20, (k * 21 + j + 1) * 20);
    const want = bodyOutlineReference(hu, dims, [1, 1, 1], options(1, 0));
    assert.equal(differences(bodyOutline(hu, dims, [1, 1, 1], options(1, 0)), want, dims).count, 0);
    assert.equal(
      want.reduce((n, v) => n + v, 0),
      0,
      "the reference keeps nothing",
    );
  });

  it("replaces background and External voxels by the outline and keeps other labels, aligned in its buffer or not", () => {
    const dims: Dims = [70, 50, 6];
    const hu = patientCt(dims, 8);
    const body = bodyOutlineReference(hu, dims, [0.9, 0.9, 2], options(1, 3));
    const rnd = seededRandom(4);
    for (const offset of [0, 1]) {
      // the network's labels: mostly the outline itself (whole words agree), some wrong voxels, an organ (label 2)
      const buffer = new Uint8Array(body.length + offset);
      const data = buffer.subarray(offset);
      for (let i = 0; i < data.length; i++) data[i] = rnd() < 0.05 ? Math.floor(rnd() * 3) : body[i]!;
      const want = data.map((v, i) => (v !== 0 && v !== 1 ? v : body[i]!));
      const changes = want.reduce((n, v, i) => n + (v !== data[i] ? 1 : 0), 0);
      const changed = applyExternal({ dims, data }, hu, [0.9, 0.9, 2], options(1, 3));
      assert.equal(differences(data, want, dims).count, 0, `offset ${offset}`);
      assert.equal(changed, changes);
      assert.ok(changes > 0);
    }
  });

  it("fills the holes of each slice of a mask as before (the intersect mode's last step)", () => {
    const rnd = seededRandom(5);
    for (let c = 0; c < 10; c++) {
      const dims: Dims = [5 + Math.floor(rnd() * 60), 5 + Math.floor(rnd() * 60), 2];
      const mask = new Uint8Array(dims[0] * dims[1] * dims[2]);
      const density = rnd();
      for (let i = 0; i < mask.length; i++) mask[i] = rnd() < density ? 1 : 0;
      const want = mask.slice();
      fillSliceHolesReference(want, dims);
      fillSliceHoles(mask, dims);
      assert.equal(differences(mask, want, dims).count, 0, `case ${c}`);
    }
  });
});

/** The disc by its definition: offsets whose distance in mm is at most r, tried one by one. */
function bruteForce(
  w: Uint8Array,
  [nx, ny]: [number, number],
  [sx, sy, r]: readonly [number, number, number],
  erode: boolean,
): Uint8Array {
  const out = new Uint8Array(nx * ny);
  for (let y = 0; y < ny; y++)
    for (let x = 0; x < nx; x++) {
      let all = true,
        any = false;
      for (let v = 0; v < ny; v++)
        for (let u = 0; u < nx; u++) {
          if (((u - x) * sx) ** 2 + ((v - y) * sy) ** 2 > r * r) continue;
          if (w[v * nx + u]) any = true;
          else all = false;
        }
      out[y * nx + x] = (erode ? all : any) ? 1 : 0;
    }
  return out;
}

it("erodes and dilates a slice by a disc in mm on anisotropic pixels, as the definition says", () => {
  const rnd = seededRandom(11);
  // radii and spacings chosen so no offset lies within rounding of the disc's edge, but for the integer case
  for (const [nx, ny, sx, sy, r] of [
    [21, 21, 1, 1, 5], // offsets (3, 4) lie exactly on the edge, and are in the disc
    [13, 9, 0.7, 1.9, 2.9],
    [40, 20, 0.45, 0.8, 3.7],
    [70, 11, 0.31, 1.3, 11.1],
  ] as const) {
    const w = new Uint8Array(nx * ny);
    for (let p = 0; p < w.length; p++) w[p] = rnd() < (nx === 21 ? 0.97 : 0.8) ? 1 : 0;
    const words = Math.ceil(nx / 32);
    const bits = new Int32Array(ny * words);
    for (let p = 0; p < w.length; p++)
      if (w[p]) bits[Math.floor(p / nx) * words + ((p % nx) >> 5)]! |= 1 << ((p % nx) % 32);
    const disc = new DiscMorphology(nx, ny, sx, sy, r);
    for (const erode of [true, false]) {
      disc.load(bits, 0, erode ? 1 : 0);
      if (erode) disc.erode();
      else disc.dilate();
      const result = new Int32Array(bits.length);
      disc.outAnd(new Int32Array(bits.length).fill(-1), 0, result, 0);
      const got = new Uint8Array(nx * ny);
      for (let p = 0; p < got.length; p++)
        got[p] = (result[Math.floor(p / nx) * words + ((p % nx) >> 5)]! >>> ((p % nx) % 32)) & 1;
      const want = bruteForce(w, [nx, ny], [sx, sy, r], erode);
      assert.deepEqual(got, want, `${erode ? "erosion" : "dilation"} of ${nx}×${ny} by ${r} mm`);
    }
  }
});
