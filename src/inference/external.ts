import type { LabelMap } from "../volume/volume.js";
import { DiscMorphology } from "./discMorphology.js";
import { fillHolesByRuns, SliceRuns } from "./sliceRuns.js";

type Dims = readonly [number, number, number];

/** The manifest's `postprocessing.external`: which label is the body outline, and how the classical step finds it. */
export interface ExternalOptions {
  /** the label value that is the External (body outline) */
  label: number;
  /** HU above which a voxel is patient (or table), after smoothing */
  thresholdHu: number;
  /** in-plane box smoothing radius, mm: a voxel must exceed the threshold both raw and smoothed, so noise specks in air go */
  smoothMm: number;
  /** in-plane opening radius, mm: thinner structures (table shells, immobilisation masks) cannot join the body */
  openingMm: number;
  /** "replace": the classical outline is the External; "intersect": the network's External within it, holes filled */
  combine: "replace" | "intersect";
}

// bits of the working mask, one byte per voxel
const ABOVE = 1; // smoothed HU above the threshold, holes filled per slice
const OPENED = 2; // kept by the in-plane opening
const LARGEST = 4; // in the largest 3D component of the opened mask
const BODY = 16; // the final outline
const NEAR = 32; // above the threshold and near the largest component (per slice)

/**
 * One slice's box mean, radius rx × ry pixels (edges: the mean of the pixels inside the slice), then ABOVE in `w`
 * where both the raw and the smoothed HU exceed the threshold; returns how many pixels are ABOVE. The sums run along
 * x, then along y with one running sum per column over contiguous rows: each column's additions and subtractions,
 * and so its float rounding, are those of a sweep down the column.
 */
function smoothAndThreshold(
  slice: Float32Array,
  nx: number,
  ny: number,
  [rx, ry]: readonly [number, number],
  thresholdHu: number,
  { tmp, column }: { tmp: Float32Array; column: Float64Array },
  w: Uint8Array,
): number {
  for (let y = 0; y < ny; y++) boxRow(slice, tmp, y * nx, nx, rx);
  column.fill(0);
  let count = 0;
  for (let i = 0; i < Math.min(ry, ny); i++, count++) for (let x = 0; x < nx; x++) column[x]! += tmp[i * nx + x]!;
  let above = 0;
  for (let y = 0; y < ny; y++) {
    const add = y + ry < ny ? (y + ry) * nx : -1,
      sub = y - ry - 1 >= 0 ? (y - ry - 1) * nx : -1;
    if (add >= 0) count++;
    if (sub >= 0) count--;
    // per column: the row entering the window, then the row leaving it, then the mean as the float32 it was stored as
    for (let x = 0, p = y * nx; x < nx; x++, p++) {
      let c = column[x]!;
      if (add >= 0) c += tmp[add + x]!;
      if (sub >= 0) c -= tmp[sub + x]!;
      column[x] = c;
      const on = slice[p]! > thresholdHu && Math.fround(c / count) > thresholdHu;
      w[p] = on ? ABOVE : 0;
      above += on ? 1 : 0;
    }
  }
  return above;
}

/** Box mean of one row of `n` values at `base`, radius r, into `to`: a running sum, the pixels inside the row counted. */
function boxRow(from: Float32Array, to: Float32Array, base: number, n: number, r: number): void {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < Math.min(r, n); i++) (sum += from[base + i]!), count++;
  // [0, a): the window grows; [a, b): it slides (r + 1 < n - r) or covers the row; [b, n): it shrinks
  const grow = Math.max(0, n - r),
    shrink = Math.min(n, r + 1);
  const a = Math.min(grow, shrink),
    b = Math.max(grow, shrink);
  let i = 0;
  for (; i < a; i++) (sum += from[base + i + r]!), (to[base + i] = sum / ++count);
  if (grow > shrink)
    for (; i < b; i++) (sum += from[base + i + r]!), (sum -= from[base + i - r - 1]!), (to[base + i] = sum / count);
  else for (; i < b; i++) to[base + i] = sum / count;
  for (; i < n; i++) (sum -= from[base + i - r - 1]!), (to[base + i] = sum / --count);
}

/** True when some HU of the slice exceeds the threshold (most slices of a scan; none of the air around a short one). */
function anyAbove(slice: Float32Array, thresholdHu: number): boolean {
  for (let p = 0; p < slice.length; p++) if (slice[p]! > thresholdHu) return true;
  return false;
}

/**
 * Slice by slice: ABOVE where the smoothed HU exceeds the threshold (holes filled), OPENED where an in-plane opening
 * (erosion then dilation by a disc of `openingMm`) keeps it. The opening is what separates the table and thin
 * immobilisation shells from the patient before the largest component is taken.
 */
function thresholdAndOpen(
  hu: Float32Array,
  dims: Dims,
  spacing: readonly number[],
  o: ExternalOptions,
  work: Uint8Array,
): void {
  const [nx, ny, nz] = dims;
  const plane = nx * ny;
  const [sx, sy] = [spacing[0]!, spacing[1]!];
  const radius = [Math.round(o.smoothMm / sx), Math.round(o.smoothMm / sy)] as const;
  const scratch = { tmp: new Float32Array(plane), column: new Float64Array(nx) };
  const disc = new DiscMorphology(nx, ny, sx, sy, o.openingMm);
  const runs = new SliceRuns(nx, ny);
  for (let k = 0; k < nz; k++) {
    const w = work.subarray(k * plane, (k + 1) * plane);
    const slice = hu.subarray(k * plane, (k + 1) * plane);
    // smoothing may only take away (noise specks in air): it must not bridge a one-pixel gap between an arm and the trunk
    if (!anyAbove(slice, o.thresholdHu) || smoothAndThreshold(slice, nx, ny, radius, o.thresholdHu, scratch, w) === 0)
      continue;
    // holes filled before the opening: a thin wall around air (a phantom's skull, a chest wall at the lungs) is
    // solid then and survives it, while open shells (table, head rests) stay thin and go
    fillHolesByRuns(w, nx, ny, runs, ABOVE);
    // eroded: the whole disc around it ABOVE (outside the slice counts as ABOVE); opened: within the disc of an eroded pixel
    disc.pack(w, ABOVE, 1);
    disc.erode();
    disc.outToBits();
    disc.dilate();
    disc.unpack(w, OPENED, ABOVE);
  }
}

/** Runs of OPENED voxels along x, row by row (row = z·ny + y), and a union-find over them. */
class OpenedRuns {
  start = new Int32Array(1 << 16); // first voxel's linear index
  length = new Int32Array(1 << 16);
  parent = new Int32Array(1 << 16);
  n = 0;

  add(p: number, len: number): void {
    if (this.n === this.start.length) {
      const grow = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      [this.start, this.length, this.parent] = [grow(this.start), grow(this.length), grow(this.parent)];
    }
    this.start[this.n] = p;
    this.length[this.n] = len;
    this.parent[this.n] = this.n;
    this.n++;
  }

  root(i: number): number {
    const parent = this.parent;
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!; // path halving
      i = parent[i]!;
    }
    return i;
  }

  /** Joins every run of row range [a0, a1) with each run of [b0, b1) it overlaps in x (6-connectivity across rows). */
  joinOverlapping(a0: number, a1: number, b0: number, b1: number, nx: number): void {
    let j = b0;
    for (let i = a0; i < a1; i++) {
      const x0 = this.start[i]! % nx,
        x1 = x0 + this.length[i]!;
      while (j < b1 && (this.start[j]! % nx) + this.length[j]! <= x0) j++;
      for (let k = j; k < b1 && this.start[k]! % nx < x1; k++) {
        const ra = this.root(i),
          rb = this.root(k);
        if (ra !== rb) this.parent[ra] = rb;
      }
    }
  }
}

/**
 * Marks LARGEST on the largest 6-connected 3D component of OPENED, by runs: each row's runs of opened voxels are
 * joined with the runs they touch in the row before (same slice) and the same row of the slice before, in a
 * union-find. One sequential pass over the volume and work per run, not per voxel.
 */
function markLargestComponent(work: Uint8Array, [nx, ny, nz]: Dims): void {
  const rows = ny * nz;
  const runs = new OpenedRuns();
  const rowStart = new Int32Array(rows + 1);
  for (let row = 0; row < rows; row++) {
    rowStart[row] = runs.n;
    const base = row * nx;
    for (let x = 0; x < nx; x++) {
      if (!(work[base + x]! & OPENED)) continue;
      const x0 = x;
      while (x + 1 < nx && work[base + x + 1]! & OPENED) x++;
      runs.add(base + x0, x - x0 + 1);
    }
    const end = runs.n;
    if (row % ny > 0) runs.joinOverlapping(rowStart[row]!, end, rowStart[row - 1]!, rowStart[row]!, nx);
    if (row >= ny) runs.joinOverlapping(rowStart[row]!, end, rowStart[row - ny]!, rowStart[row - ny + 1]!, nx);
  }
  rowStart[rows] = runs.n;
  if (runs.n === 0) return;
  const size = new Float64Array(runs.n);
  let best = 0;
  for (let i = 0; i < runs.n; i++) {
    const r = runs.root(i);
    size[r]! += runs.length[i]!;
    if (size[r]! > size[best]!) best = r;
  }
  for (let i = 0; i < runs.n; i++) {
    if (runs.root(i) !== best) continue;
    const p = runs.start[i]!;
    for (let q = p; q < p + runs.length[i]!; q++) work[q]! |= LARGEST;
  }
}

/**
 * Slice by slice, BODY: what the opening shaved off the kept component comes back (pixels above the threshold
 * within `openingMm` of it and connected to it in the slice, so a mask lying apart from the skin stays out), then
 * every hole is filled: lungs, airway, bowel gas, anything the slice's border cannot reach.
 */
function restoreAndFill(work: Uint8Array, dims: Dims, spacing: readonly number[], o: ExternalOptions): void {
  const [nx, ny, nz] = dims;
  const plane = nx * ny;
  const disc = new DiscMorphology(nx, ny, spacing[0]!, spacing[1]!, o.openingMm);
  const runs = new SliceRuns(nx, ny);
  const above = new SliceRuns(nx, ny);
  for (let k = 0; k < nz; k++) {
    const w = work.subarray(k * plane, (k + 1) * plane);
    if (!hasBit(w, LARGEST)) continue;
    // NEAR: above the threshold and within reach of the component
    disc.pack(w, LARGEST, 0);
    disc.dilate();
    disc.unpack(w, NEAR, ABOVE);
    // BODY: the regions of NEAR that hold some of the component (it lies within NEAR)
    runs.label(w, NEAR, NEAR);
    for (let i = 0; i < runs.n; i++) {
      const root = runs.root(i);
      if (!runs.flag[root] && hasBit(w, LARGEST, runs.start[i]!, runs.end[i]!)) runs.flag[root] = 1;
    }
    for (let i = 0; i < runs.n; i++) if (runs.flag[runs.root(i)]) runs.fill(w, i, BODY);
    joinSplitPieces(w, runs, above);
    fillHolesByRuns(w, nx, ny, runs, BODY);
  }
}

/** True when a pixel of w[from, to) has `bit`. */
function hasBit(w: Uint8Array, bit: number, from = 0, to = w.length): boolean {
  for (let p = from; p < to; p++) if (w[p]! & bit) return true;
  return false;
}

/**
 * Where the opening cut the slice's body into pieces that the thresholded slice holds as one (a thin neck strand,
 * a part-scanned slice), that whole piece of the thresholded slice becomes body: the External is one shape
 * wherever the patient is, and thin attachments come back only on such slices.
 */
function joinSplitPieces(w: Uint8Array, body: SliceRuns, above: SliceRuns): void {
  body.label(w, BODY, BODY);
  let pieces = 0;
  for (let i = 0; i < body.n && pieces < 2; i++) if (body.root(i) === i) pieces++;
  if (pieces < 2) return;
  // BODY lies within ABOVE: each piece falls in one region of ABOVE; a region holding two pieces becomes body
  above.label(w, ABOVE, ABOVE);
  const piece = above.tag;
  let j = 0;
  for (let i = 0; i < body.n; i++) {
    while (above.end[j]! <= body.start[i]!) j++; // the run of ABOVE holding run i (both in pixel order)
    const region = above.root(j),
      own = body.root(i);
    if (piece[region] === -1) piece[region] = own;
    else if (piece[region] !== own) above.flag[region] = 1;
  }
  for (let i = 0; i < above.n; i++) if (above.flag[above.root(i)]) above.fill(w, i, BODY);
}

/**
 * The classical body outline of a CT volume (HU, x fastest, axial slices along the third axis): 1 inside the body.
 * Threshold after a small smoothing, in-plane opening, largest 3D component, the opening's shavings restored,
 * holes filled per slice. Memory: one byte per voxel, a few planes.
 */
export function bodyOutline(hu: Float32Array, dims: Dims, spacing: readonly number[], o: ExternalOptions): Uint8Array {
  const work = new Uint8Array(hu.length);
  thresholdAndOpen(hu, dims, spacing, o, work);
  markLargestComponent(work, dims);
  restoreAndFill(work, dims, spacing, o);
  for (let i = 0; i < work.length; i++) work[i] = work[i]! & BODY ? 1 : 0;
  return work;
}

/**
 * The manifest's External step on a label map (in place): voxels of other labels are left as they are (organs lie
 * inside the body), background and External voxels take the outline. With "intersect" the network's External is
 * kept only within the outline, then its holes are filled per slice. Returns voxels changed.
 */
export function applyExternal(
  labels: LabelMap,
  hu: Float32Array,
  spacing: readonly number[],
  o: ExternalOptions,
): number {
  const body = bodyOutline(hu, labels.dims, spacing, o);
  const data = labels.data;
  if (o.combine === "intersect") {
    for (let i = 0; i < data.length; i++) body[i] = body[i] && data[i] === o.label ? 1 : 0;
    fillSliceHoles(body, labels.dims);
  }
  let changed = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v !== 0 && v !== o.label) continue;
    const want = body[i] ? o.label : 0;
    if (v !== want) (data[i] = want), changed++;
  }
  return changed;
}

/** Fills each axial slice's holes of a 0/1 mask in place (background the slice's border cannot reach). */
export function fillSliceHoles(mask: Uint8Array, [nx, ny, nz]: Dims): void {
  const plane = nx * ny;
  const runs = new SliceRuns(nx, ny);
  for (let k = 0; k < nz; k++) fillHolesByRuns(mask.subarray(k * plane, (k + 1) * plane), nx, ny, runs, 1);
}
