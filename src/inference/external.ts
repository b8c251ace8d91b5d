import type { LabelMap } from "../volume/volume.js";

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
const SEEN = 8; // visited by the component search
const BODY = 16; // the final outline
const NEAR = 32; // above the threshold and near the largest component (per slice)
const JOIN = 64; // visited while joining pieces of a slice (per slice)

/**
 * Squared distances (mm²) along one line of `n` samples `step` mm apart, from f (0 at targets, Infinity elsewhere),
 * in place: Felzenszwalb and Huttenlocher's lower envelope of parabolas, exact, O(n).
 */
function distanceLine(f: Float64Array, n: number, step: number, v: Int32Array, z: Float64Array, d: Float64Array): void {
  let k = -1;
  for (let q = 0; q < n; q++) {
    const fq = f[q]!;
    if (fq === Infinity) continue;
    const pq = q * step;
    while (k >= 0) {
      const p = v[k]! * step;
      const s = (fq + pq * pq - (f[v[k]!]! + p * p)) / (2 * (pq - p));
      if (s > z[k]!) break;
      k--;
    }
    k++;
    v[k] = q;
    z[k] =
      k === 0 ? -Infinity : (fq + pq * pq - (f[v[k - 1]!]! + (v[k - 1]! * step) ** 2)) / (2 * (pq - v[k - 1]! * step));
  }
  if (k < 0) return; // no target on this line: every distance stays infinite
  z[k + 1] = Infinity;
  let j = 0;
  for (let q = 0; q < n; q++) {
    while (z[j + 1]! < q * step) j++;
    const dq = (q - v[j]!) * step;
    d[q] = dq * dq + f[v[j]!]!;
  }
  f.set(d.subarray(0, n));
}

/**
 * Per-slice exact Euclidean distance transform with anisotropic pixels: squared mm from each pixel to the nearest
 * one whose byte has `bit` set (`set` true) or clear (`set` false).
 */
export class SliceDistance {
  private readonly out: Float64Array;
  private readonly line: Float64Array;
  private readonly v: Int32Array;
  private readonly z: Float64Array;
  private readonly d: Float64Array;

  constructor(
    private readonly nx: number,
    private readonly ny: number,
    private readonly sx: number,
    private readonly sy: number,
  ) {
    const n = Math.max(nx, ny);
    this.out = new Float64Array(nx * ny);
    [this.line, this.z, this.d] = [new Float64Array(n), new Float64Array(n + 1), new Float64Array(n)];
    this.v = new Int32Array(n);
  }

  /** The squared distances of the slice's pixels; valid until the next call. */
  squared(w: Uint8Array, bit: number, set: boolean): Float64Array {
    const { nx, ny, out, line, v, z, d } = this;
    const want = set ? bit : 0;
    // along y, distances in whole pixels to the nearest target in the column: two sweeps over contiguous rows
    for (let x = 0; x < nx; x++) out[x] = (w[x]! & bit) === want ? 0 : Infinity;
    for (let p = nx; p < nx * ny; p++) out[p] = (w[p]! & bit) === want ? 0 : out[p - nx]! + 1;
    for (let p = nx * (ny - 1) - 1; p >= 0; p--) if (out[p + nx]! + 1 < out[p]!) out[p] = out[p + nx]! + 1;
    // along x, the exact envelope over each row of squared column distances in mm
    const sy2 = this.sy * this.sy;
    for (let y = 0; y < ny; y++) {
      const row = y * nx;
      for (let x = 0; x < nx; x++) line[x] = out[row + x]! * out[row + x]! * sy2;
      distanceLine(line, nx, this.sx, v, z, d);
      out.set(line.subarray(0, nx), row);
    }
    return out;
  }
}

/** Box mean of one slice, separable, radius rx × ry pixels (edges: the mean of the pixels inside the slice). */
function smoothSlice(
  src: Float32Array,
  nx: number,
  ny: number,
  rx: number,
  ry: number,
  tmp: Float32Array,
  out: Float32Array,
): void {
  const pass = (
    from: Float32Array,
    to: Float32Array,
    n: number,
    lines: number,
    r: number,
    step: number,
    stride: number,
  ) => {
    for (let l = 0; l < lines; l++) {
      const base = l * stride;
      let sum = 0;
      let count = 0;
      for (let i = 0; i < Math.min(r, n); i++) (sum += from[base + i * step]!), count++;
      for (let i = 0; i < n; i++) {
        if (i + r < n) (sum += from[base + (i + r) * step]!), count++;
        if (i - r - 1 >= 0) (sum -= from[base + (i - r - 1) * step]!), count--;
        to[base + i * step] = sum / count;
      }
    }
  };
  pass(src, tmp, nx, ny, rx, 1, nx);
  pass(tmp, out, ny, nx, ry, nx, 1);
}

/**
 * Slice by slice: ABOVE where the smoothed HU exceeds the threshold (holes filled), OPENED where an in-plane opening (erosion then
 * dilation by a disc of `openingMm`) keeps it. The opening is what separates the table and thin immobilisation
 * shells from the patient before the largest component is taken.
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
  const rx = Math.round(o.smoothMm / sx),
    ry = Math.round(o.smoothMm / sy);
  const tmp = new Float32Array(plane),
    smooth = new Float32Array(plane);
  const edt = new SliceDistance(nx, ny, sx, sy);
  const stack = new Int32Array(plane);
  const r2 = o.openingMm * o.openingMm;
  for (let k = 0; k < nz; k++) {
    const w = work.subarray(k * plane, (k + 1) * plane);
    const slice = hu.subarray(k * plane, (k + 1) * plane);
    smoothSlice(slice, nx, ny, rx, ry, tmp, smooth);
    // smoothing may only take away (noise specks in air): it must not bridge a one-pixel gap between an arm and the trunk
    for (let p = 0; p < plane; p++) w[p] = smooth[p]! > o.thresholdHu && slice[p]! > o.thresholdHu ? ABOVE : 0;
    // holes filled before the opening: a thin wall around air (a phantom's skull, a chest wall at the lungs) is
    // solid then and survives it, while open shells (table, head rests) stay thin and go
    fillHolesInSlice(w, nx, ny, stack, ABOVE, SEEN);
    // eroded: farther than r from anything below the threshold; opened: within r of an eroded pixel
    const toOutside = edt.squared(w, ABOVE, false);
    for (let p = 0; p < plane; p++) if (toOutside[p]! > r2) w[p]! |= OPENED; // eroded, for now
    const toEroded = edt.squared(w, OPENED, true);
    for (let p = 0; p < plane; p++) w[p] = toEroded[p]! <= r2 && w[p]! & ABOVE ? w[p]! | OPENED : w[p]! & ~OPENED;
  }
}

/**
 * Marks LARGEST on the largest 6-connected 3D component of OPENED. Two floods with a SEEN bit in the working mask
 * instead of per-voxel component ids: memory is one queue entry per opened voxel.
 */
function markLargestComponent(work: Uint8Array, [nx, ny, nz]: Dims): void {
  const plane = nx * ny;
  let count = 0;
  for (let i = 0; i < work.length; i++) if (work[i]! & OPENED) count++;
  if (count === 0) return;
  const queue = new Int32Array(count);
  const flood = (seed: number, mark: number, need: number): number => {
    const both = mark | need; // a voxel joins when it has `need` and not yet `mark`
    let head = 0,
      tail = 0;
    queue[tail++] = seed;
    work[seed]! |= mark;
    while (head < tail) {
      const p = queue[head++]!;
      const x = p % nx,
        y = ((p - x) / nx) % ny,
        z = (p - x - y * nx) / plane;
      // unrolled: this runs once per voxel of the body (tens of millions)
      let q: number;
      if (x > 0 && (work[(q = p - 1)]! & both) === need) (work[q]! |= mark), (queue[tail++] = q);
      if (x < nx - 1 && (work[(q = p + 1)]! & both) === need) (work[q]! |= mark), (queue[tail++] = q);
      if (y > 0 && (work[(q = p - nx)]! & both) === need) (work[q]! |= mark), (queue[tail++] = q);
      if (y < ny - 1 && (work[(q = p + nx)]! & both) === need) (work[q]! |= mark), (queue[tail++] = q);
      if (z > 0 && (work[(q = p - plane)]! & both) === need) (work[q]! |= mark), (queue[tail++] = q);
      if (z < nz - 1 && (work[(q = p + plane)]! & both) === need) (work[q]! |= mark), (queue[tail++] = q);
    }
    return tail;
  };
  let best = -1,
    bestSize = 0;
  for (let s = 0; s < work.length; s++) {
    if (!(work[s]! & OPENED) || work[s]! & SEEN) continue;
    const size = flood(s, SEEN, OPENED);
    if (size > bestSize) [best, bestSize] = [s, size];
  }
  flood(best, LARGEST, OPENED);
}

/**
 * 4-connected growth within one slice, breadth first, from the pixels in queue[0, n) (already marked) over pixels
 * whose bits under `mask` equal `want`, marking `bit` (inside `mask`, clear in `want`): the region grown is
 * queue[0, returned count). A pixel enters the queue once, so a slice's worth of queue is always enough.
 */
function floodSlice(
  w: Uint8Array,
  nx: number,
  ny: number,
  queue: Int32Array,
  n: number,
  mask: number,
  want: number,
  bit: number,
): number {
  let head = 0,
    tail = n;
  while (head < tail) {
    const p = queue[head++]!;
    const x = p % nx;
    let q: number;
    if (x > 0 && (w[(q = p - 1)]! & mask) === want) (w[q]! |= bit), (queue[tail++] = q);
    if (x < nx - 1 && (w[(q = p + 1)]! & mask) === want) (w[q]! |= bit), (queue[tail++] = q);
    if (p >= nx && (w[(q = p - nx)]! & mask) === want) (w[q]! |= bit), (queue[tail++] = q);
    if (p < (ny - 1) * nx && (w[(q = p + nx)]! & mask) === want) (w[q]! |= bit), (queue[tail++] = q);
  }
  return tail;
}

/**
 * Slice by slice, BODY: what the opening shaved off the kept component comes back (pixels above the threshold
 * within `openingMm` of it and connected to it in the slice, so a mask lying apart from the skin stays out), then
 * every hole is filled: lungs, airway, bowel gas, anything the slice's border cannot reach.
 */
function restoreAndFill(work: Uint8Array, dims: Dims, spacing: readonly number[], o: ExternalOptions): void {
  const [nx, ny, nz] = dims;
  const plane = nx * ny;
  const edt = new SliceDistance(nx, ny, spacing[0]!, spacing[1]!);
  const stack = new Int32Array(plane);
  const ids = new Int32Array(plane);
  const r2 = o.openingMm * o.openingMm;
  for (let k = 0; k < nz; k++) {
    const w = work.subarray(k * plane, (k + 1) * plane);
    let n = 0;
    for (let p = 0; p < plane; p++) {
      w[p]! &= ~SEEN; // free again once the largest component is marked: the hole filling's scratch bit
      if (w[p]! & LARGEST) (w[p]! |= BODY), (stack[n++] = p);
    }
    if (n === 0) continue;
    const near = edt.squared(w, LARGEST, true);
    // NEAR: above the threshold and within reach of the component; BODY floods over it from the component
    for (let p = 0; p < plane; p++) if (near[p]! <= r2 && w[p]! & ABOVE) w[p]! |= NEAR;
    floodSlice(w, nx, ny, stack, n, NEAR | BODY, NEAR, BODY);
    joinSplitPieces(w, nx, ny, ids, stack);
    fillHolesInSlice(w, nx, ny, stack, BODY, SEEN);
  }
}

/**
 * Breadth-first 4-connected region of one slice from `seed`, over pixels whose bits under `mask` equal `want`,
 * marking `bit` (inside `mask`, clear in `want`): the region is queue[0, returned count).
 */
function region(
  w: Uint8Array,
  nx: number,
  ny: number,
  queue: Int32Array,
  seed: number,
  mask: number,
  want: number,
  bit: number,
): number {
  w[seed]! |= bit;
  queue[0] = seed;
  return floodSlice(w, nx, ny, queue, 1, mask, want, bit);
}

/**
 * Where the opening cut the slice's body into pieces that the thresholded slice holds as one (a thin neck strand,
 * a part-scanned slice), that whole piece of the thresholded slice becomes body: the External is one shape
 * wherever the patient is, and thin attachments come back only on such slices.
 */
function joinSplitPieces(w: Uint8Array, nx: number, ny: number, ids: Int32Array, queue: Int32Array): void {
  const plane = nx * ny;
  ids.fill(0);
  let pieces = 0;
  for (let p = 0; p < plane; p++) {
    if (!(w[p]! & BODY) || ids[p]) continue;
    const n = region(w, nx, ny, queue, p, BODY | JOIN, BODY, JOIN);
    pieces++;
    for (let i = 0; i < n; i++) ids[queue[i]!] = pieces;
  }
  for (let p = 0; p < plane; p++) w[p]! &= ~JOIN;
  if (pieces < 2) return;
  for (let p = 0; p < plane; p++) {
    if (!(w[p]! & BODY) || w[p]! & JOIN) continue;
    const n = region(w, nx, ny, queue, p, ABOVE | JOIN, ABOVE, JOIN);
    let joined = false;
    for (let i = 0; i < n && !joined; i++) {
      const id = ids[queue[i]!]!;
      joined = id !== 0 && id !== ids[p];
    }
    if (joined) for (let i = 0; i < n; i++) w[queue[i]!]! |= BODY;
  }
  for (let p = 0; p < plane; p++) w[p]! &= ~JOIN;
}

/** Sets `body` on every pixel of a slice that the border cannot reach through pixels without it; `scratch` is a free bit. */
function fillHolesInSlice(
  w: Uint8Array,
  nx: number,
  ny: number,
  stack: Int32Array,
  body: number,
  scratch: number,
): void {
  let n = 0;
  const edge = (p: number) => {
    if (!(w[p]! & (body | scratch))) (w[p]! |= scratch), (stack[n++] = p);
  };
  for (let x = 0; x < nx; x++) edge(x), edge((ny - 1) * nx + x);
  for (let y = 0; y < ny; y++) edge(y * nx), edge(y * nx + nx - 1);
  floodSlice(w, nx, ny, stack, n, body | scratch, 0, scratch);
  for (let p = 0; p < nx * ny; p++) w[p] = w[p]! & scratch ? w[p]! & ~scratch : w[p]! | body;
}

/**
 * The classical body outline of a CT volume (HU, x fastest, axial slices along the third axis): 1 inside the body.
 * Threshold after a small smoothing, in-plane opening, largest 3D component, the opening's shavings restored,
 * holes filled per slice. Memory: one byte per voxel, one queue entry per opened voxel, a few planes.
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
  const stack = new Int32Array(plane);
  for (let k = 0; k < nz; k++) fillHolesInSlice(mask.subarray(k * plane, (k + 1) * plane), nx, ny, stack, 1, 2);
}
