/**
 * The body outline as src/inference/external.ts computed it before it was rewritten for speed (commit eac5a52):
 * per-slice exact Euclidean distance transforms for the opening and the restore, per-pixel floods for the holes.
 * Kept unchanged as the slow reference the rewrite must equal voxel for voxel.
 */
import type { ExternalOptions } from "../src/inference/external.js";

type Dims = readonly [number, number, number];

// bits of the working mask, one byte per voxel
const ABOVE = 1; // smoothed HU above the threshold, holes filled per slice
const OPENED = 2; // kept by the in-plane opening
const LARGEST = 4; // in the largest 3D component of the opened mask
const SEEN = 8; // scratch bit of the hole filling
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
class SliceDistance {
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
export function bodyOutlineReference(
  hu: Float32Array,
  dims: Dims,
  spacing: readonly number[],
  o: ExternalOptions,
): Uint8Array {
  const work = new Uint8Array(hu.length);
  thresholdAndOpen(hu, dims, spacing, o, work);
  markLargestComponent(work, dims);
  restoreAndFill(work, dims, spacing, o);
  for (let i = 0; i < work.length; i++) work[i] = work[i]! & BODY ? 1 : 0;
  return work;
}

/** Fills each axial slice's holes of a 0/1 mask in place (background the slice's border cannot reach). */
export function fillSliceHolesReference(mask: Uint8Array, [nx, ny, nz]: Dims): void {
  const plane = nx * ny;
  const stack = new Int32Array(plane);
  for (let k = 0; k < nz; k++) fillHolesInSlice(mask.subarray(k * plane, (k + 1) * plane), nx, ny, stack, 1, 2);
}
