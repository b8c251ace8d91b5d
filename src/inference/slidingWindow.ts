/** Sliding-window inference as nnU-Net v2 does it: tiles, Gaussian importance blending, mirroring; batched and streamed. */
import { DelineateError } from "../errors.js";
import { collectGarbage } from "./collectGarbage.js";

export type Dims = [number, number, number];

export interface WindowOptions {
  /** tile size [x, y, z]; the image is at least this large on every axis (the caller pads) */
  patch: Dims;
  /** fraction of the patch by which neighbouring tiles overlap (0.5: nnU-Net's step of half a patch) */
  overlap: number;
  blend: "gaussian" | "constant";
  /** axes to mirror for test-time augmentation: every combination is run and the logits averaged */
  mirrorAxes: readonly (0 | 1 | 2)[];
  /** tiles (or mirrorings of a tile) given to the network in one call; 1 when absent */
  batch?: number;
  /**
   * how the accumulated weighted logits are stored: "float32" (default; exactly the sums nnU-Net's float32 path
   * makes) or "float16" (half the band's memory; each stored sum is rounded to 11 significant bits, so logits are
   * off by up to about 1e-3 of their size and a voxel whose two best classes are that close may change label)
   */
  accumulator?: "float32" | "float16";
}

/** The network on `n` tiles laid end to end ([n, 1, Z, Y, X]): their logits, [n, C, Z, Y, X]. */
export type Predict = (tiles: Float32Array, n: number, tileDims: Dims) => Promise<Float32Array>;

/**
 * Receives the blended logits of image row (y, z), final: channel c, voxel x at `logits[offset + c * channelStride + x]`.
 * Rows come as soon as no later tile reaches them; for any one slice, in increasing y. The array is reused once the
 * call returns.
 */
export type EmitRow = (z: number, y: number, logits: Float32Array, offset: number, channelStride: number) => void;

/**
 * Tile starts along one axis: as few tiles as cover it with at most the given overlap's step, spread evenly so the
 * first starts at 0 and the last ends at the edge.
 */
export function tileStarts(size: number, patch: number, overlap: number): number[] {
  if (size <= patch) return [0];
  // a step under one voxel (a 2D model's one-slice patch) would only run the same tile twice
  const step = Math.max(1, patch * (1 - overlap));
  const n = Math.ceil((size - patch) / step) + 1;
  return Array.from({ length: n }, (_, i) => Math.round((i * (size - patch)) / (n - 1)));
}

/** nnU-Net's importance map: a Gaussian with sigma patch/8 per axis, peak 10, zeros raised to the smallest positive value. */
export function gaussianImportance(patch: Dims): Float32Array {
  const [px, py, pz] = patch;
  const g = (n: number) => Array.from({ length: n }, (_, i) => Math.exp(-(((i - (n - 1) / 2) / (n / 8)) ** 2) / 2));
  const gx = g(px),
    gy = g(py),
    gz = g(pz);
  const out = new Float32Array(px * py * pz);
  let max = 0;
  for (let k = 0; k < pz; k++)
    for (let j = 0; j < py; j++)
      for (let i = 0; i < px; i++) max = Math.max(max, (out[(k * py + j) * px + i] = gx[i]! * gy[j]! * gz[k]!));
  let minPositive = Infinity;
  for (let i = 0; i < out.length; i++) {
    out[i] = (out[i]! / max) * 10;
    if (out[i]! > 0) minPositive = Math.min(minPositive, out[i]!);
  }
  for (let i = 0; i < out.length; i++) if (out[i] === 0) out[i] = minPositive;
  return out;
}

/**
 * Copies `src` from `srcOffset`, a [channels, ...dims] array whose last dimension varies fastest, flipped along the
 * given array axes (indices into `dims`), into `out` at `outOffset`.
 */
export function flipCopy(
  src: Float32Array,
  srcOffset: number,
  out: Float32Array,
  outOffset: number,
  dims: Dims,
  channels: number,
  axes: readonly number[],
): void {
  const [n0, n1, n2] = dims;
  const f0 = axes.includes(0),
    f1 = axes.includes(1),
    f2 = axes.includes(2);
  const vol = n0 * n1 * n2;
  for (let c = 0; c < channels; c++)
    for (let i = 0; i < n0; i++)
      for (let j = 0; j < n1; j++) {
        const s = srcOffset + c * vol + ((f0 ? n0 - 1 - i : i) * n1 + (f1 ? n1 - 1 - j : j)) * n2;
        const d = outOffset + c * vol + (i * n1 + j) * n2;
        if (f2) for (let k = 0; k < n2; k++) out[d + k] = src[s + n2 - 1 - k]!;
        else out.set(src.subarray(s, s + n2), d);
      }
}

/** Writes `data`, a [C, Z, Y, X] (C may be 1) array, flipped along the given axes (0 = x, 1 = y, 2 = z) into `out`. */
export function flipInto(
  data: Float32Array,
  out: Float32Array,
  dims: Dims,
  channels: number,
  axes: readonly number[],
): Float32Array {
  if (!axes.length) {
    out.set(data);
    return out;
  }
  // as an array, [C, Z, Y, X] has z first: axis a (x = 0) is array axis 2 - a
  flipCopy(
    data,
    0,
    out,
    0,
    [dims[2], dims[1], dims[0]],
    channels,
    axes.map((a) => 2 - a),
  );
  return out;
}

/** Outputs this large are collected as soon as they are blended (see collectGarbage). */
const LARGE_OUTPUT = 64 * 2 ** 20;

/** Every subset of the mirror axes, the empty one (no flip) first. */
function mirrorCombinations(axes: readonly number[]): number[][] {
  return Array.from({ length: 2 ** axes.length }, (_, m) => axes.filter((_, b) => (m >> b) & 1));
}

/**
 * Runs `predict` on every tile (and every mirroring of it) of a [Z, Y, X] image, `batch` at a time, and blends the
 * [C, Z, Y, X] logits: each tile's logits, averaged over its mirrorings, are weighted by the importance map (or 1s),
 * summed, and divided by the summed weights.
 *
 * Memory is bounded by the patch, not the image: the blended sums are kept per image row (y, z), a row made when a
 * tile first reaches it, and as soon as the last tile that reaches a row has been blended the row is final: it is
 * divided by its weights, handed to `emit` and its buffer reused. Tiles go z, then y, then x, so what is held is the
 * rows the next band of tiles along z still reaches (the overlap, across the whole slice) and, of the band now
 * running, the rows of its current row of tiles: about three quarters of one patch's depth of whole slices at
 * overlap 0.5, where finishing whole slices only held the full patch depth. Each voxel's sum takes its tiles in the
 * same order either way, so the logits are the same to the bit.
 */
export async function slidingWindow(
  image: Float32Array,
  dims: Dims,
  channels: number,
  options: WindowOptions,
  predict: Predict,
  emit: EmitRow,
): Promise<void> {
  const [nx, ny, nz] = dims;
  const [px, py, pz] = options.patch;
  // the caller pads every axis up to the patch first; a smaller image is its mistake, not the data's
  if (nx < px || ny < py || nz < pz)
    throw new DelineateError(
      "DLN_ERR_INFERENCE",
      `image ${dims.join("×")} is smaller than the patch ${options.patch.join("×")}`,
      { dims: dims.join("×"), patch: options.patch.join("×") },
    );
  // one tile covering the image, not mirrored: its logits are the answer, with no copies or weights to undo
  if (px === nx && py === ny && pz === nz && options.mirrorAxes.length === 0) {
    const out = await predict(image, 1, dims);
    for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) emit(z, y, out, (z * ny + y) * nx, nz * ny * nx);
    return;
  }
  const mirrors = mirrorCombinations(options.mirrorAxes);
  const tiles = tileOrigins(dims, options.patch, options.overlap);
  const band =
    options.accumulator === "float16"
      ? new HalfRowAccumulator(dims, tiles, channels, options, emit)
      : new RowAccumulator(dims, tiles, channels, options, emit);
  const items = tiles.length * mirrors.length;
  const batch = Math.max(1, Math.min(options.batch ?? 1, items));
  const tileVol = px * py * pz;
  const input = new Float32Array(batch * tileVol);
  const crop = new Float32Array(tileVol);
  // mirrored passes are averaged into a tile of their own; unmirrored logits are blended straight from the network's output
  const mirrored = mirrors.length > 1;
  const tileLogits = new Float32Array(mirrored ? channels * tileVol : 0);
  const back = new Float32Array(mirrored ? channels * tileVol : 0);
  let cropped = -1; // the tile now in `crop`: its mirrorings are cut from it, not from the image again
  // blends the network's output for items first … first + n - 1
  const take = (out: Float32Array, first: number, n: number) => {
    for (let b = 0; b < n; b++) {
      const item = first + b,
        t = Math.floor(item / mirrors.length),
        m = item % mirrors.length;
      const logits = out.subarray(b * channels * tileVol, (b + 1) * channels * tileVol);
      if (!mirrored) {
        band.blend(t, logits);
        continue;
      }
      flipInto(logits, back, options.patch, channels, mirrors[m]!);
      for (let i = 0; i < back.length; i++) tileLogits[i]! += back[i]! / mirrors.length;
      if (m === mirrors.length - 1) {
        band.blend(t, tileLogits);
        tileLogits.fill(0);
      }
    }
  };
  for (let first = 0; first < items; first += batch) {
    const n = Math.min(batch, items - first);
    for (let b = 0; b < n; b++) {
      const t = Math.floor((first + b) / mirrors.length);
      if (t !== cropped) cutTile(image, dims, tiles[t]!, options.patch, crop);
      cropped = t;
      const into = input.subarray(b * tileVol, (b + 1) * tileVol);
      flipInto(crop, into, options.patch, 1, mirrors[(first + b) % mirrors.length]!);
    }
    let out: Float32Array | undefined = await predict(
      n === batch ? input : input.subarray(0, n * tileVol),
      n,
      options.patch,
    );
    const large = out.byteLength >= LARGE_OUTPUT;
    take(out, first, n);
    out = undefined;
    // the network's output (808 MiB for a 128³ tile of 101 classes) is done with: let it go before the next run
    // (blended in `take`, so that no variable of this frame still points into it)
    if (large) collectGarbage();
  }
}

/** Copies the patch-sized block of `image` ([Z, Y, X], `dims`) whose first voxel is `origin` into `out`. */
function cutTile(image: Float32Array, dims: Dims, [x0, y0, z0]: Dims, [px, py, pz]: Dims, out: Float32Array): void {
  const [nx, ny] = dims;
  for (let k = 0; k < pz; k++)
    for (let j = 0; j < py; j++) {
      const from = ((z0 + k) * ny + y0 + j) * nx + x0;
      out.set(image.subarray(from, from + px), (k * py + j) * px);
    }
}

/**
 * The tiles in z, then y, then x order over an image of `dims`, and for each, the image rows (index z · ny + y) that
 * no later tile reaches, in increasing z, then y: those are final once it has been blended.
 */
export function finalRows(dims: Dims, tiles: readonly Dims[], [, py, pz]: Dims): number[][] {
  const [, ny, nz] = dims;
  const last = new Int32Array(ny * nz).fill(-1);
  tiles.forEach(([, y0, z0], t) => {
    for (let z = z0; z < z0 + pz; z++) last.fill(t, z * ny + y0, z * ny + y0 + py);
  });
  const finalAfter: number[][] = tiles.map(() => []);
  for (let row = 0; row < last.length; row++) finalAfter[last[row]!]!.push(row);
  return finalAfter;
}

/** The tiles' origins, z, then y, then x, as the sliding window runs them. */
export function tileOrigins([nx, ny, nz]: Dims, [px, py, pz]: Dims, overlap: number): Dims[] {
  const tiles: Dims[] = [];
  for (const z0 of tileStarts(nz, pz, overlap))
    for (const y0 of tileStarts(ny, py, overlap))
      for (const x0 of tileStarts(nx, px, overlap)) tiles.push([x0, y0, z0]);
  return tiles;
}

/** The most image rows the accumulators hold at once (made by a tile, not final yet): what their memory scales with. */
export function mostRowsHeld(dims: Dims, patch: Dims, overlap: number): number {
  const tiles = tileOrigins(dims, patch, overlap);
  const finalAfter = finalRows(dims, tiles, patch);
  const made = new Uint8Array(dims[1] * dims[2]);
  let held = 0,
    most = 0;
  tiles.forEach(([, y0, z0], t) => {
    for (let z = z0; z < z0 + patch[2]; z++)
      for (let y = y0; y < y0 + patch[1]; y++)
        if (!made[z * dims[1] + y]) {
          made[z * dims[1] + y] = 1;
          held++;
        }
    most = Math.max(most, held);
    held -= finalAfter[t]!.length;
  });
  return most;
}

/**
 * What both accumulators share: the tiles in order, the tile's weight map (Gaussian or flat), and for each image row
 * (y, z) the last tile that reaches it, after which the row is final.
 */
abstract class Rows {
  protected readonly nx: number;
  protected readonly ny: number;
  protected readonly tileVol: number;
  protected readonly weight: Float32Array;
  /** the rows (index z · ny + y) made final by each tile, in increasing z, then y */
  private readonly finalAfter: number[][];

  constructor(
    dims: Dims,
    protected readonly tiles: readonly Dims[],
    protected readonly channels: number,
    protected readonly options: WindowOptions,
    protected readonly emit: EmitRow,
  ) {
    const [px, py, pz] = options.patch;
    const [nx, ny] = dims;
    this.nx = nx;
    this.ny = ny;
    this.tileVol = px * py * pz;
    this.weight =
      options.blend === "gaussian" ? gaussianImportance(options.patch) : new Float32Array(this.tileVol).fill(1);
    this.finalAfter = finalRows(dims, tiles, options.patch);
  }

  /** Adds tile `t`'s [C, Z, Y, X] logits, weighted, then hands on the rows no later tile reaches. */
  blend(t: number, logits: Float32Array): void {
    const [x0, y0, z0] = this.tiles[t]!;
    const [px, py, pz] = this.options.patch;
    for (let k = 0; k < pz; k++)
      for (let j = 0; j < py; j++) this.blendRow(z0 + k, y0 + j, x0, (k * py + j) * px, logits);
    for (const row of this.finalAfter[t]!) this.finish(Math.floor(row / this.ny), row % this.ny, row);
  }

  /** Adds one tile row (tile voxels t0 … t0 + px − 1, image row `row` from x0) to the sums. */
  protected abstract blendRow(z: number, y: number, x0: number, t0: number, logits: Float32Array): void;
  /** Row `row` (y, z) is final: divide, hand over, let its buffer go. */
  protected abstract finish(z: number, y: number, row: number): void;
}

/**
 * Weighted sums of tiles' logits (channels 0 … C − 1) and of their weights (channel C) per image row, float32, one
 * [C + 1, X] array per row that a tile has reached and that is not final yet.
 */
class RowAccumulator extends Rows {
  private readonly rows: (Float32Array | undefined)[] = [];
  private readonly free: Float32Array[] = [];

  protected blendRow(z: number, y: number, x0: number, t0: number, logits: Float32Array): void {
    const { channels, tileVol, weight, nx } = this;
    const px = this.options.patch[0];
    const at = z * this.ny + y;
    let sum = this.rows[at];
    if (!sum) sum = this.rows[at] = this.free.pop()?.fill(0) ?? new Float32Array((channels + 1) * nx);
    const w0 = channels * nx + x0;
    for (let i = 0; i < px; i++) sum[w0 + i]! += weight[t0 + i]!;
    for (let c = 0; c < channels; c++) {
      const s = c * nx + x0,
        l = c * tileVol + t0;
      for (let i = 0; i < px; i++) sum[s + i]! += logits[l + i]! * weight[t0 + i]!;
    }
  }

  protected finish(z: number, y: number, row: number): void {
    const { channels, nx } = this;
    const sum = this.rows[row]!;
    const w0 = channels * nx;
    for (let c = 0; c < channels; c++) for (let x = 0; x < nx; x++) sum[c * nx + x]! /= sum[w0 + x]!;
    this.emit(z, y, sum, 0, nx);
    this.rows[row] = undefined;
    this.free.push(sum);
  }
}

/** float32 → IEEE half, rounding to nearest (ties away from zero); overflow → ±Infinity, NaN kept. */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function toHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const e = (x >>> 23) & 0xff;
  const m = x & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  if (e >= 113) {
    // normal half: the carry of the rounding may step into the exponent, as it should; past 65504 it is Infinity
    const h = ((e - 112) << 10) + ((m + 0x1000) >> 13);
    return sign | Math.min(h, 0x7c00);
  }
  if (e < 102) return sign;
  // subnormal half
  return sign | (((m | 0x800000) + (1 << (125 - e))) >> (126 - e));
}

/** Every half's float32 value, by its 16 bits. */
export const HALF_TO_FLOAT: Float32Array = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const e = (h >> 10) & 0x1f,
      m = h & 0x3ff,
      s = h & 0x8000 ? -1 : 1;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})();

/**
 * RowAccumulator's work with half the memory: per voxel it keeps the weighted mean of the logits so far (not their
 * weighted sum), as float16, and the sum of weights as float32. A tile adds its logit l with weight w as
 * mean += (w / W) · (l − mean), W the weights so far including w, computed in float32 and rounded back to half.
 * A mean (not a sum) stays on the logits' scale, so the tiny weights at a tile's corners (1e-9 of the peak) do not
 * fall below half's range; the error is half an ulp of the logit's size per tile that reaches the voxel (up to 8
 * here; 2^-12 relative each). Final rows are handed on in float32.
 */
class HalfRowAccumulator extends Rows {
  private readonly means: (Uint16Array | undefined)[] = [];
  private readonly weights: (Float32Array | undefined)[] = [];
  private readonly freeMeans: Uint16Array[] = [];
  private readonly freeWeights: Float32Array[] = [];
  private readonly ratio = new Float32Array(this.options.patch[0]);
  private readonly out = new Float32Array(this.channels * this.nx);

  protected blendRow(z: number, y: number, x0: number, t0: number, logits: Float32Array): void {
    const { channels, tileVol, weight, nx, ratio } = this;
    const px = this.options.patch[0];
    const at = z * this.ny + y;
    let mean = this.means[at];
    let weights = this.weights[at]!;
    if (!mean) {
      mean = this.means[at] = this.freeMeans.pop()?.fill(0) ?? new Uint16Array(channels * nx);
      weights = this.weights[at] = this.freeWeights.pop()?.fill(0) ?? new Float32Array(nx);
    }
    for (let i = 0; i < px; i++) ratio[i] = weight[t0 + i]! / (weights[x0 + i]! += weight[t0 + i]!);
    for (let c = 0; c < channels; c++) {
      const s = c * nx + x0,
        l = c * tileVol + t0;
      for (let i = 0; i < px; i++) {
        const m = HALF_TO_FLOAT[mean[s + i]!]!;
        mean[s + i] = toHalf(m + ratio[i]! * (logits[l + i]! - m));
      }
    }
  }

  protected finish(z: number, y: number, row: number): void {
    const { out } = this;
    const mean = this.means[row]!;
    for (let v = 0; v < out.length; v++) out[v] = HALF_TO_FLOAT[mean[v]!]!;
    this.emit(z, y, out, 0, this.nx);
    this.freeMeans.push(mean);
    this.freeWeights.push(this.weights[row]!);
    this.means[row] = this.weights[row] = undefined;
  }
}
