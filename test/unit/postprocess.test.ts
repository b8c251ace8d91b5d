import assert from "node:assert/strict";
import { it } from "node:test";
import { dropSmallSlicePieces } from "../../src/inference/external.js";
import { fillHoles, keepLargestComponent, removeSmallComponents } from "../../src/inference/postprocess.js";
import { normalize, postprocess } from "../../src/inference/segmentVolume.js";
import type { LabelMap } from "../../src/volume/volume.js";

it("keeps each label's largest 3D component, leaving other labels alone", () => {
  // 4×3×2: label 1 has a 3-voxel piece spanning both slices and a 1-voxel speck; label 2 has two single voxels
  const slice0 = [1, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1];
  const slice1 = [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0];
  const labels: LabelMap = { dims: [4, 3, 2], data: Uint8Array.from([...slice0, ...slice1]) };
  assert.equal(keepLargestComponent(labels, 1), 1);
  assert.deepEqual(Array.from(labels.data), [1, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]);
  assert.equal(keepLargestComponent(labels, 2), 1, "a tie keeps the first found");
  assert.equal(labels.data.filter((v) => v === 2).length, 1);
});

it("treats diagonal neighbours as separate (6-connectivity)", () => {
  const labels: LabelMap = { dims: [2, 2, 1], data: Uint8Array.from([1, 0, 0, 1]) };
  assert.equal(keepLargestComponent(labels, 1), 1);
});

it("drops components under a size, fills a label's own cavities but not one it shares, all in 3D", () => {
  // 5×5×5: label 1 a hollow 3×3×3 cube (cavity at the centre) plus a one-voxel speck in a corner
  const dims: [number, number, number] = [5, 5, 5];
  const at = (x: number, y: number, z: number) => (z * 5 + y) * 5 + x;
  const data = new Uint8Array(125);
  for (let z = 1; z <= 3; z++) for (let y = 1; y <= 3; y++) for (let x = 1; x <= 3; x++) data[at(x, y, z)] = 1;
  data[at(2, 2, 2)] = 0;
  data[at(0, 0, 0)] = 1;
  const labels = { dims, data };
  assert.equal(removeSmallComponents(labels, 1, 2), 1, "the speck goes");
  assert.equal(data[at(0, 0, 0)], 0);
  assert.equal(fillHoles(labels, 1), 1, "the enclosed centre is filled");
  assert.equal(data[at(2, 2, 2)], 1);
  // a cavity that touches label 2 is not label 1's hole
  data[at(2, 2, 2)] = 0;
  data[at(2, 2, 1)] = 2;
  assert.equal(fillHoles(labels, 1), 0);
  // background reaching the border is never a hole
  const open = { dims: [3, 3, 1] as [number, number, number], data: Uint8Array.from([1, 1, 1, 1, 0, 1, 1, 1, 1]) };
  assert.equal(fillHoles(open, 1), 0, "a 2D ring in a one-slice volume touches the border through z");
});

it("applies the manifest's post-processing with the volume's spacing: 0.5 mL at 1×1×2 mm is 250 voxels", () => {
  const dims: [number, number, number] = [20, 20, 10];
  const data = new Uint8Array(4000);
  for (let z = 0; z < 10; z++) for (let y = 0; y < 5; y++) for (let x = 0; x < 5; x++) data[(z * 20 + y) * 20 + x] = 1; // 250 voxels
  for (let z = 0; z < 10; z++)
    for (let y = 10; y < 15; y++) for (let x = 10; x < 14; x++) data[(z * 20 + y) * 20 + x] = 1; // 200 voxels
  const labels = { dims, data };
  postprocess(labels, { keepLargestComponent: false, fillHoles: false, minComponentMl: 0.5 }, [1], [1, 1, 2]);
  assert.equal(data.filter((v) => v === 1).length, 250, "the 0.4 mL piece goes, the 0.5 mL one stays");
  postprocess(labels, { keepLargestComponent: [2], fillHoles: [2], minComponentMl: 0 }, [1], [1, 1, 2]);
  assert.equal(data.filter((v) => v === 1).length, 250, "settings naming other labels leave label 1 alone");
});

it("normalises as the manifest says: CT with fixed statistics, per-image z-score (optionally over non-zero voxels), percentiles", () => {
  const ct = Float32Array.from([-2000, -1000, 0, 500, 3000]);
  assert.equal(normalize(ct, { kind: "ct-clip-zscore", clip: [-1000, 1000], mean: 0, std: 1000 }), -1);
  assert.deepEqual(Array.from(ct), [-1, -1, 0, 0.5, 1]);
  const z = Float32Array.from([1, 2, 3, 4, 5]);
  normalize(z, { kind: "zscore", nonzeroMask: false });
  const sd = Math.sqrt(2);
  assert.deepEqual(
    Array.from(z).map((v) => Math.round(v * 1e6) / 1e6),
    [-2, -1, 0, 1, 2].map((v) => Math.round((v / sd) * 1e6) / 1e6),
  );
  const masked = Float32Array.from([0, 0, 2, 4, 6]);
  normalize(masked, { kind: "zscore", nonzeroMask: true });
  const sd2 = Math.sqrt(8 / 3);
  assert.deepEqual(
    Array.from(masked).map((v) => Math.round(v * 1e6) / 1e6),
    [0, 0, -2 / sd2, 0, 2 / sd2].map((v) => Math.round(v * 1e6) / 1e6),
    "statistics of 2, 4, 6; zeros stay 0",
  );
  const p = Float32Array.from({ length: 101 }, (_, i) => i); // 0..100
  normalize(p, { kind: "percentile", lower: 10, upper: 90 });
  // clipped to 10..90 first: 0..9 become 10 and 91..100 become 90, then z-scored
  assert.equal(p[0], p[10]);
  assert.equal(p[100], p[90]);
  assert.ok(Math.abs(p[50]!) < 1e-6, "the median of a symmetric clip is the mean");
});

/** A synthetic CT slice stack: a body (soft tissue) with two lungs and a gas bubble, a table shell under it, a speck in air. */
function phantomCt(): {
  hu: Float32Array;
  dims: [number, number, number];
  at: (x: number, y: number, z: number) => number;
} {
  const dims: [number, number, number] = [64, 64, 6];
  const at = (x: number, y: number, z: number) => (z * 64 + y) * 64 + x;
  const hu = new Float32Array(64 * 64 * 6).fill(-1000);
  for (let z = 0; z < 6; z++)
    for (let y = 0; y < 64; y++)
      for (let x = 0; x < 64; x++) {
        const [u, v] = [(x - 32) / 22, (y - 28) / 16];
        if (u * u + v * v <= 1) hu[at(x, y, z)] = 40;
        for (const cx of [22, 42]) if (((x - cx) / 6) ** 2 + ((y - 26) / 8) ** 2 <= 1) hu[at(x, y, z)] = -850; // lungs
        if ((x - 32) ** 2 + (y - 36) ** 2 <= 4) hu[at(x, y, z)] = -990; // bowel gas
        if (y === 50 && x > 4 && x < 60) hu[at(x, y, z)] = 300; // table top, 1 mm thick, 6 mm below the body
        if ((y === 47 || y === 48 || y === 49) && (x === 5 || x === 59)) hu[at(x, y, z)] = 300; // its rails
      }
  hu[at(60, 5, 3)] = 200; // a speck in air
  return { hu, dims, at };
}

it("makes the External one closed body per slice: holes filled, table and specks out, other labels kept", () => {
  const { hu, dims, at } = phantomCt();
  const labels: LabelMap = { dims, data: new Uint8Array(hu.length) };
  labels.data[at(32, 28, 2)] = 2; // an organ inside the body stays
  labels.data[at(2, 60, 2)] = 1; // the network's External in the air goes
  const manifest = { keepLargestComponent: false, fillHoles: false, minComponentMl: 0 } as const;
  // no smoothing here: a 3×3 mean would also take off the ellipse's four one-pixel tips, which the last check counts
  const external = {
    label: 1,
    thresholdHu: -500,
    smoothMm: 0,
    openingMm: 3,
    minPieceMm2: 0,
    combine: "replace",
  } as const;
  postprocess(labels, { ...manifest, external }, [1, 2], [1, 1, 2], hu);
  assert.equal(labels.data[at(32, 28, 2)], 2);
  for (let z = 0; z < 6; z++) {
    assert.equal(labels.data[at(22, 26, z)], 1, "a lung is inside the body");
    assert.equal(labels.data[at(32, 36, z)], 1, "bowel gas is inside the body");
    assert.equal(labels.data[at(32, 50, z)], 0, "the table is not");
    assert.equal(labels.data[at(5, 48, z)], 0, "nor its rails");
  }
  assert.equal(labels.data[at(60, 5, 3)], 0, "nor a speck in the air");
  assert.equal(labels.data[at(2, 60, 2)], 0);
  const inside = (x: number, y: number) => ((x - 32) / 22) ** 2 + ((y - 28) / 16) ** 2 <= 1;
  let wrong = 0;
  for (let y = 0; y < 64; y++)
    for (let x = 0; x < 64; x++) if ((labels.data[at(x, y, 4)] !== 0) !== inside(x, y)) wrong++;
  assert.equal(wrong, 0, "the outline is the body's own, not eroded or grown by the opening");
});

it("intersects with the network's External when asked, filling the holes that leaves, and needs the HU", () => {
  const { hu, dims, at } = phantomCt();
  const labels: LabelMap = { dims, data: new Uint8Array(hu.length) };
  // the network: the left half of the body, with the lung carved out, and the table
  for (let z = 0; z < 6; z++)
    for (let y = 0; y < 64; y++) for (let x = 0; x < 32; x++) if (hu[at(x, y, z)]! > -500) labels.data[at(x, y, z)] = 1;
  const p = { keepLargestComponent: false, fillHoles: false, minComponentMl: 0 } as const;
  const external = {
    label: 1,
    thresholdHu: -500,
    smoothMm: 1,
    openingMm: 3,
    minPieceMm2: 0,
    combine: "intersect",
  } as const;
  assert.throws(() => postprocess(labels, { ...p, external }, [1], [1, 1, 2]), /needs the CT's HU/);
  postprocess(labels, { ...p, external }, [1], [1, 1, 2], hu);
  for (let z = 0; z < 6; z++) {
    assert.equal(labels.data[at(22, 26, z)], 1, "the lung the network left out is a hole, filled");
    assert.equal(labels.data[at(42, 26, z)], 0, "the right half the network missed stays out");
    assert.equal(labels.data[at(20, 50, z)], 0, "the table it marked goes");
  }
});

it("drops a slice's small islands of the External but keeps its largest piece and pieces of the minimum size", () => {
  // 12×8 pixels of 2×2 mm, 2 slices; slice 0: a 6×4 body, a 1-pixel island (4 mm²), a 2-pixel one touching it only
  // diagonally (8 mm²) and a 3×1 piece (12 mm²); slice 1: only a 1-pixel piece, which is its largest and stays
  const dims: [number, number, number] = [12, 8, 2];
  const mask = new Uint8Array(12 * 8 * 2);
  const at = (x: number, y: number, z: number) => (z * 8 + y) * 12 + x;
  for (let y = 1; y < 5; y++) for (let x = 1; x < 7; x++) mask[at(x, y, 0)] = 1;
  mask[at(10, 1, 0)] = 1;
  mask[at(7, 5, 0)] = mask[at(8, 5, 0)] = 1; // touches the body's corner (6, 4) diagonally: a piece of its own
  for (let x = 8; x < 11; x++) mask[at(x, 7, 0)] = 1;
  mask[at(3, 3, 1)] = 1;
  const before = mask.slice();
  // 12 mm² at 2×2 mm: 3 pixels
  assert.equal(dropSmallSlicePieces(mask, dims, Math.ceil(12 / 4)), 3);
  assert.equal(mask[at(10, 1, 0)], 0, "the 1-pixel island goes");
  assert.equal(mask[at(7, 5, 0)]! + mask[at(8, 5, 0)]!, 0, "the diagonal 2-pixel one too");
  assert.equal(mask[at(9, 7, 0)], 1, "the 3-pixel piece stays");
  assert.equal(mask[at(3, 3, 1)], 1, "a slice's largest piece stays however small");
  for (let i = 0; i < mask.length; i++) if (mask[i]) assert.equal(before[i], 1, "nothing added");
  assert.equal(dropSmallSlicePieces(mask, dims, 1), 0, "a minimum of one pixel drops nothing");
});
