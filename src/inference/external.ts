import type { LabelMap } from "../volume/volume.js";
import { anyBits, anyWord, rowRuns, setBits, wordsPerRow } from "./bitRows.js";
import { DiscMorphology } from "./discMorphology.js";
import { fillHolesByRuns, fillHolesInBits, findRoot, SliceRuns } from "./sliceRuns.js";

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
  /**
   * a slice's pieces (4-connected) other than its largest, smaller than this in mm², are dropped: at a coarse grid
   * an ear's rim or the nose's tip cut off by the slice is one to a few voxels, an island in a planning contour
   * (absent: every piece kept; the manifest's default is 100)
   */
  minPieceMm2?: number;
  /** "replace": the classical outline is the External; "intersect": the network's External within it, holes filled */
  combine: "replace" | "intersect";
}

/**
 * The outline's masks, one bit per voxel in rows of words (bitRows.ts), a slice after another: ABOVE (smoothed HU
 * above the threshold, holes filled per slice) and OPENED (kept by the in-plane opening, then only its largest 3D
 * component). A slice's pass is a pass over its words, and its regions are runs between the words' transitions.
 */
interface Masks {
  nx: number;
  ny: number;
  nz: number;
  /** words per row, and per slice */
  words: number;
  sliceWords: number;
  above: Int32Array;
  opened: Int32Array;
}

/**
 * One slice's box mean, radius rx × ry pixels (edges: the mean of the pixels inside the slice), then ABOVE (packed at
 * above[offset]) where both the raw and the smoothed HU exceed the threshold; returns how many pixels are ABOVE.
 * The sums run along x, then along y with one running sum per column over contiguous rows: each column's additions
 * and subtractions, and so its float rounding, are those of a sweep down the column.
 */
function smoothAndThreshold(
  slice: Float32Array,
  [rx, ry]: readonly [number, number],
  thresholdHu: number,
  { tmp, column }: { tmp: Float32Array; column: Float64Array },
  m: Masks,
  offset: number,
): number {
  const { nx, ny, words, above } = m;
  for (let y = 0; y < ny; y++) boxRow(slice, tmp, y * nx, nx, rx);
  column.fill(0);
  let count = 0;
  for (let i = 0; i < Math.min(ry, ny); i++, count++) for (let x = 0; x < nx; x++) column[x]! += tmp[i * nx + x]!;
  let total = 0;
  for (let y = 0; y < ny; y++) {
    const add = y + ry < ny ? (y + ry) * nx : -1,
      sub = y - ry - 1 >= 0 ? (y - ry - 1) * nx : -1;
    if (add >= 0) count++;
    if (sub >= 0) count--;
    // per column: the row entering the window, then the row leaving it, then the mean as the float32 it was stored as
    let word = 0;
    for (let x = 0, p = y * nx; x < nx; x++, p++) {
      let c = column[x]!;
      if (add >= 0) c += tmp[add + x]!;
      if (sub >= 0) c -= tmp[sub + x]!;
      column[x] = c;
      if (slice[p]! > thresholdHu && Math.fround(c / count) > thresholdHu) (word |= 1 << (x & 31)), total++;
      if ((x & 31) === 31 || x === nx - 1) (above[offset + y * words + (x >>> 5)] = word), (word = 0);
    }
  }
  return total;
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
function thresholdAndOpen(hu: Float32Array, m: Masks, spacing: readonly number[], o: ExternalOptions): void {
  const { nx, ny, nz, sliceWords, above, opened } = m;
  const plane = nx * ny;
  const [sx, sy] = [spacing[0]!, spacing[1]!];
  const radius = [Math.round(o.smoothMm / sx), Math.round(o.smoothMm / sy)] as const;
  const scratch = { tmp: new Float32Array(plane), column: new Float64Array(nx) };
  const disc = new DiscMorphology(nx, ny, sx, sy, o.openingMm);
  const runs = new SliceRuns(nx, ny);
  for (let k = 0; k < nz; k++) {
    const slice = hu.subarray(k * plane, (k + 1) * plane);
    const offset = k * sliceWords;
    // smoothing may only take away (noise specks in air): it must not bridge a one-pixel gap between an arm and the trunk
    if (!anyAbove(slice, o.thresholdHu) || smoothAndThreshold(slice, radius, o.thresholdHu, scratch, m, offset) === 0)
      continue;
    // holes filled before the opening: a thin wall around air (a phantom's skull, a chest wall at the lungs) is
    // solid then and survives it, while open shells (table, head rests) stay thin and go
    fillHolesInBits(above, offset, nx, ny, runs);
    // eroded: the whole disc around it ABOVE (outside the slice counts as ABOVE); opened: within the disc of an eroded pixel
    disc.load(above, offset, 1);
    disc.erode();
    disc.outToBits();
    disc.dilate();
    disc.outAnd(above, offset, opened, offset);
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
    return findRoot(this.parent, i);
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
 * Keeps in OPENED only its largest 6-connected 3D component, by runs: each row's runs of opened voxels are joined
 * with the runs they touch in the row before (same slice) and the same row of the slice before, in a union-find.
 * One sequential pass over the words of the volume and work per run, not per voxel.
 */
function keepLargestComponent({ nx, ny, nz, words, opened }: Masks): void {
  const rows = ny * nz;
  const runs = new OpenedRuns();
  const rowStart = new Int32Array(rows + 1);
  const pairs = new Int32Array(nx + 2);
  for (let row = 0; row < rows; row++) {
    rowStart[row] = runs.n;
    const count = rowRuns(opened, row * words, nx, false, pairs, 0);
    for (let i = 0; i < count; i += 2) runs.add(row * nx + pairs[i]!, pairs[i + 1]! - pairs[i]!);
    const end = runs.n;
    if (row % ny > 0) runs.joinOverlapping(rowStart[row]!, end, rowStart[row - 1]!, rowStart[row]!, nx);
    if (row >= ny) runs.joinOverlapping(rowStart[row]!, end, rowStart[row - ny]!, rowStart[row - ny + 1]!, nx);
  }
  rowStart[rows] = runs.n;
  opened.fill(0);
  if (runs.n === 0) return;
  const size = new Float64Array(runs.n);
  let best = 0;
  for (let i = 0; i < runs.n; i++) {
    const r = runs.root(i);
    size[r]! += runs.length[i]!;
    if (size[r]! > size[best]!) best = r;
  }
  for (let row = 0; row < rows; row++)
    for (let i = rowStart[row]!; i < rowStart[row + 1]!; i++) {
      if (runs.root(i) !== best) continue;
      const x0 = runs.start[i]! - row * nx;
      setBits(opened, row * words, x0, x0 + runs.length[i]!);
    }
}

/**
 * Slice by slice, the outline into `out` (1 inside): what the opening shaved off the kept component comes back
 * (pixels above the threshold within `openingMm` of it and connected to it in the slice, so a mask lying apart from
 * the skin stays out), then every hole is filled: lungs, airway, bowel gas, anything the slice's border cannot reach.
 */
function restoreAndFill(m: Masks, spacing: readonly number[], o: ExternalOptions, out: Uint8Array): void {
  const { nx, ny, nz, words, sliceWords, above, opened: largest } = m;
  const disc = new DiscMorphology(nx, ny, spacing[0]!, spacing[1]!, o.openingMm);
  const runs = new SliceRuns(nx, ny);
  const aboveRuns = new SliceRuns(nx, ny);
  const near = new Int32Array(sliceWords),
    body = new Int32Array(sliceWords);
  for (let k = 0; k < nz; k++) {
    const offset = k * sliceWords;
    if (!anyWord(largest, offset, offset + sliceWords)) continue;
    // NEAR: above the threshold and within reach of the component
    disc.load(largest, offset, 0);
    disc.dilate();
    disc.outAnd(above, offset, near, 0);
    // BODY: the regions of NEAR that hold some of the component (it lies within NEAR)
    runs.labelBits(near, 0, false);
    const { start, end, rowStart, flag } = runs;
    for (let y = 0; y < ny; y++)
      for (let i = rowStart[y]!; i < rowStart[y + 1]!; i++) {
        const root = runs.root(i);
        if (!flag[root] && anyBits(largest, offset + y * words, start[i]! - y * nx, end[i]! - y * nx)) flag[root] = 1;
      }
    body.fill(0);
    for (let y = 0; y < ny; y++)
      for (let i = rowStart[y]!; i < rowStart[y + 1]!; i++) if (flag[runs.root(i)]) runs.setRun(body, 0, i, y);
    joinSplitPieces(body, above, offset, runs, aboveRuns);
    fillHolesInBits(body, 0, nx, ny, runs);
    runs.labelBits(body, 0, false);
    const at = k * nx * ny;
    for (let i = 0; i < runs.n; i++) out.fill(1, at + runs.start[i]!, at + runs.end[i]!);
  }
}

/**
 * Where the opening cut the slice's body into pieces that the thresholded slice holds as one (a thin neck strand,
 * a part-scanned slice), that whole piece of the thresholded slice becomes body: the External is one shape
 * wherever the patient is, and thin attachments come back only on such slices.
 */
function joinSplitPieces(body: Int32Array, above: Int32Array, offset: number, runs: SliceRuns, aboveRuns: SliceRuns) {
  runs.labelBits(body, 0, false);
  let pieces = 0;
  for (let i = 0; i < runs.n && pieces < 2; i++) if (runs.root(i) === i) pieces++;
  if (pieces < 2) return;
  // BODY lies within ABOVE: each piece falls in one region of ABOVE; a region holding two pieces becomes body
  aboveRuns.labelBits(above, offset, false);
  const { tag: piece, flag: joined, rowStart } = aboveRuns;
  let j = 0;
  for (let i = 0; i < runs.n; i++) {
    while (aboveRuns.end[j]! <= runs.start[i]!) j++; // the run of ABOVE holding run i (both in pixel order)
    const region = aboveRuns.root(j),
      own = runs.root(i);
    if (piece[region] === -1) piece[region] = own;
    else if (piece[region] !== own) joined[region] = 1;
  }
  for (let y = 0; y < rowStart.length - 1; y++)
    for (let i = rowStart[y]!; i < rowStart[y + 1]!; i++)
      if (joined[aboveRuns.root(i)]) aboveRuns.setRun(body, 0, i, y);
}

/**
 * The classical body outline of a CT volume (HU, x fastest, axial slices along the third axis): 1 inside the body.
 * Threshold after a small smoothing, in-plane opening, largest 3D component, the opening's shavings restored,
 * holes filled per slice. Memory: two bits per voxel, the output's byte, a few planes.
 */
export function bodyOutline(hu: Float32Array, dims: Dims, spacing: readonly number[], o: ExternalOptions): Uint8Array {
  const [nx, ny, nz] = dims;
  const words = wordsPerRow(nx);
  const sliceWords = ny * words;
  const m: Masks = {
    nx,
    ny,
    nz,
    words,
    sliceWords,
    above: new Int32Array(nz * sliceWords),
    opened: new Int32Array(nz * sliceWords),
  };
  thresholdAndOpen(hu, m, spacing, o);
  keepLargestComponent(m);
  const out = new Uint8Array(hu.length);
  restoreAndFill(m, spacing, o, out);
  return out;
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
  dropSmallSlicePieces(body, labels.dims, Math.ceil((o.minPieceMm2 ?? 0) / (spacing[0]! * spacing[1]!)));
  return takeOutline(data, body, o.label);
}

/**
 * Clears, on every slice of `mask` (0/1), the 4-connected pieces of fewer than `minPixels` pixels other than the
 * slice's largest. Returns pixels cleared.
 */
export function dropSmallSlicePieces(mask: Uint8Array, [nx, ny, nz]: Dims, minPixels: number): number {
  if (minPixels <= 1) return 0;
  const plane = nx * ny;
  const runs = new SliceRuns(nx, ny);
  const pixels = runs.tag; // per root: its piece's pixels
  let cleared = 0;
  for (let k = 0; k < nz; k++) {
    const w = mask.subarray(k * plane, (k + 1) * plane);
    runs.label(w, 1, 1);
    if (runs.n === 0) continue;
    pixels.fill(0, 0, runs.n);
    let largest = -1;
    for (let i = 0; i < runs.n; i++) {
      const r = runs.root(i);
      pixels[r]! += runs.end[i]! - runs.start[i]!;
    }
    for (let i = 0; i < runs.n; i++) if (largest < 0 || pixels[i]! > pixels[largest]!) largest = i;
    for (let i = 0; i < runs.n; i++) {
      const r = runs.root(i);
      if (r === largest || pixels[r]! >= minPixels) continue;
      w.fill(0, runs.start[i]!, runs.end[i]!);
      cleared += runs.end[i]! - runs.start[i]!;
    }
  }
  return cleared;
}

/**
 * Background and `label` voxels of `data` become the outline (`label` inside, 0 outside); other labels stay. Four
 * voxels at a time where the label map already agrees with the outline on all four (air outside, the body inside:
 * most of a CT), voxel by voxel elsewhere. Returns voxels changed.
 */
function takeOutline(data: Uint8Array, body: Uint8Array, label: number): number {
  const aligned = data.byteOffset % 4 === 0 && body.byteOffset % 4 === 0;
  const n = aligned ? data.length >> 2 : 0;
  // an unaligned label map (a view into a larger buffer) is taken voxel by voxel
  const dataWords = aligned ? new Uint32Array(data.buffer, data.byteOffset, n) : new Uint32Array(0),
    bodyWords = aligned ? new Uint32Array(body.buffer, body.byteOffset, n) : new Uint32Array(0);
  const inside = Math.imul(label, 0x01010101) >>> 0;
  let changed = 0;
  for (let w = 0; w < n; w++) {
    const d = dataWords[w]!,
      b = bodyWords[w]!;
    if ((b === 0 && d === 0) || (b === 0x01010101 && d === inside)) continue;
    changed += takeVoxels(data, body, label, w << 2, (w << 2) + 4);
  }
  return changed + takeVoxels(data, body, label, n << 2, data.length);
}

/** takeOutline voxel by voxel over [from, to). */
function takeVoxels(data: Uint8Array, body: Uint8Array, label: number, from: number, to: number): number {
  let changed = 0;
  for (let i = from; i < to; i++) {
    const v = data[i]!;
    if (v !== 0 && v !== label) continue;
    const want = body[i] ? label : 0;
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
