/** Sliding-window inference as nnU-Net v2 does it: tiles, Gaussian importance blending, mirroring. */

export type Dims = [number, number, number];

export interface WindowOptions {
  /** tile size [x, y, z]; the image is at least this large on every axis (the caller pads) */
  patch: Dims;
  /** fraction of the patch by which neighbouring tiles overlap (0.5: nnU-Net's step of half a patch) */
  overlap: number;
  blend: "gaussian" | "constant";
  /** axes to mirror for test-time augmentation: every combination is run and the logits averaged */
  mirrorAxes: readonly (0 | 1 | 2)[];
}

/**
 * Tile starts along one axis: as few tiles as cover it with at most the given overlap's step, spread evenly so the
 * first starts at 0 and the last ends at the edge.
 */
export function tileStarts(size: number, patch: number, overlap: number): number[] {
  if (size <= patch) return [0];
  const step = patch * (1 - overlap);
  const n = Math.ceil((size - patch) / step) + 1;
  return Array.from({ length: n }, (_, i) => Math.round((i * (size - patch)) / (n - 1)));
}

/** nnU-Net's importance map: a Gaussian with sigma patch/8 per axis, peak 10, zeros raised to the smallest positive value. */
export function gaussianImportance(patch: Dims): Float32Array {
  const [px, py, pz] = patch;
  const g = (n: number) => Array.from({ length: n }, (_, i) => Math.exp(-(((i - (n - 1) / 2) / (n / 8)) ** 2) / 2));
  const gx = g(px), gy = g(py), gz = g(pz);
  const out = new Float32Array(px * py * pz);
  let max = 0;
  for (let k = 0; k < pz; k++) for (let j = 0; j < py; j++) for (let i = 0; i < px; i++) max = Math.max(max, (out[(k * py + j) * px + i] = gx[i]! * gy[j]! * gz[k]!));
  let minPositive = Infinity;
  for (let i = 0; i < out.length; i++) {
    out[i] = (out[i]! / max) * 10;
    if (out[i]! > 0) minPositive = Math.min(minPositive, out[i]!);
  }
  for (let i = 0; i < out.length; i++) if (out[i] === 0) out[i] = minPositive;
  return out;
}

/** Flips a [C, Z, Y, X] (C may be 1) array along the given axes (0 = x, 1 = y, 2 = z), into a new array. */
export function flip(data: Float32Array, dims: Dims, channels: number, axes: readonly number[]): Float32Array {
  if (!axes.length) return data;
  const [nx, ny, nz] = dims;
  const out = new Float32Array(data.length);
  const fx = axes.includes(0), fy = axes.includes(1), fz = axes.includes(2);
  const vol = nx * ny * nz;
  for (let c = 0; c < channels; c++)
    for (let k = 0; k < nz; k++)
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++) {
          const src = c * vol + ((fz ? nz - 1 - k : k) * ny + (fy ? ny - 1 - j : j)) * nx + (fx ? nx - 1 - i : i);
          out[c * vol + (k * ny + j) * nx + i] = data[src]!;
        }
  return out;
}

/** Every subset of the mirror axes, the empty one (no flip) first. */
function mirrorCombinations(axes: readonly number[]): number[][] {
  return Array.from({ length: 2 ** axes.length }, (_, m) => axes.filter((_, b) => (m >> b) & 1));
}

/**
 * Runs `predict` on every tile (and every mirroring of it) of a [Z, Y, X] image and blends the [C, Z, Y, X] logits:
 * each tile's logits, averaged over its mirrorings, are weighted by the importance map (or 1s), summed, and divided
 * by the summed weights. Returns logits for the whole image.
 */
export async function slidingWindow(
  image: Float32Array,
  dims: Dims,
  channels: number,
  options: WindowOptions,
  predict: (tile: Float32Array, tileDims: Dims) => Promise<Float32Array>,
): Promise<Float32Array> {
  const [nx, ny, nz] = dims;
  const [px, py, pz] = options.patch;
  if (nx < px || ny < py || nz < pz) throw new Error(`image ${dims.join("×")} is smaller than the patch ${options.patch.join("×")}`);
  // one tile covering the image, not mirrored: its logits are the answer, with no copies or weights to undo
  if (px === nx && py === ny && pz === nz && options.mirrorAxes.length === 0) return predict(image, dims);
  const weight = options.blend === "gaussian" ? gaussianImportance(options.patch) : new Float32Array(px * py * pz).fill(1);
  const vol = nx * ny * nz, tileVol = px * py * pz;
  const sum = new Float32Array(channels * vol);
  const weights = new Float32Array(vol);
  const tile = new Float32Array(tileVol);
  const mirrors = mirrorCombinations(options.mirrorAxes);
  for (const z0 of tileStarts(nz, pz, options.overlap))
    for (const y0 of tileStarts(ny, py, options.overlap))
      for (const x0 of tileStarts(nx, px, options.overlap)) {
        for (let k = 0; k < pz; k++) for (let j = 0; j < py; j++) tile.set(image.subarray(((z0 + k) * ny + y0 + j) * nx + x0, ((z0 + k) * ny + y0 + j) * nx + x0 + px), (k * py + j) * px);
        const logits = new Float32Array(channels * tileVol);
        for (const axes of mirrors) {
          const out = await predict(flip(tile, options.patch, 1, axes), options.patch);
          const back = flip(out, options.patch, channels, axes);
          for (let i = 0; i < back.length; i++) logits[i]! += back[i]! / mirrors.length;
        }
        for (let k = 0; k < pz; k++)
          for (let j = 0; j < py; j++)
            for (let i = 0; i < px; i++) {
              const t = (k * py + j) * px + i, v = ((z0 + k) * ny + y0 + j) * nx + x0 + i;
              const w = weight[t]!;
              weights[v]! += w;
              for (let c = 0; c < channels; c++) sum[c * vol + v]! += logits[c * tileVol + t]! * w;
            }
      }
  for (let c = 0; c < channels; c++) for (let v = 0; v < vol; v++) sum[c * vol + v]! /= weights[v]!;
  return sum;
}
