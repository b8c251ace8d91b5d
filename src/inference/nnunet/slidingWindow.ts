import { DelineateError } from "../../errors.js";
/**
 * nnU-Net v2's sliding-window prediction on the preprocessed image (nnunetv2/inference/predict_from_raw_data.py and
 * sliding_window_prediction.py), with its float16 accumulators when asked: tile placement, Gaussian importance,
 * test-time mirroring, fold averaging. Arrays are C-order [d0, d1, d2]; a 2D configuration runs every slice along d0.
 */

import { flipCopy } from "../slidingWindow.js";
import { f16round, f16roundFromFloat32, roundHalfEven } from "./half.js";
import type { Shape3 } from "./resample.js";

/** The network on `n` tiles ([n, 1, ...tile]); returns their logits [n, C, ...tile]. */
export type TileNetwork = (tiles: Float32Array, n: number, tile: Shape3) => Promise<Float32Array>;

/**
 * compute_steps_for_sliding_window (sliding_window_prediction.py:30-54): n = ceil((size - patch) / (patch * step)) + 1
 * tiles per axis, the i-th at round(i * (size - patch) / (n - 1)) with numpy's round (halves to even).
 */
export function nnunetSteps(size: number, patch: number, stepSize: number): number[] {
  const n = Math.ceil((size - patch) / (patch * stepSize)) + 1;
  if (n <= 1) return [0];
  const actual = (size - patch) / (n - 1);
  return Array.from({ length: n }, (_, i) => roundHalfEven(actual * i));
}

/**
 * compute_gaussian (sliding_window_prediction.py:10-27): a delta at patch // 2 blurred by scipy's gaussian_filter
 * (sigma patch / 8, truncated at 4 sigma, kernels normalised to sum 1, mode constant) — the product of three 1D
 * kernels —, scaled so its maximum is 10, cast to float16, zeros raised to the smallest non-zero value. A 2D patch
 * is given as [1, y, x] and its axis 0 contributes a factor 1.
 */
export function nnunetGaussian(patch: Shape3, is2d: boolean): Float32Array {
  const kernel = (n: number): Float64Array => {
    const out = new Float64Array(n);
    const sigma = n / 8;
    const radius = Math.trunc(4 * sigma + 0.5);
    const c = Math.floor(n / 2);
    let sum = 0;
    for (let x = -radius; x <= radius; x++) sum += Math.exp((-0.5 / (sigma * sigma)) * x * x);
    for (let i = 0; i < n; i++) {
      const d = i - c;
      out[i] = Math.abs(d) <= radius ? Math.exp((-0.5 / (sigma * sigma)) * d * d) / sum : 0;
    }
    return out;
  };
  const k0 = is2d ? Float64Array.of(1) : kernel(patch[0]);
  const k1 = kernel(patch[1]),
    k2 = kernel(patch[2]);
  const raw = new Float64Array(patch[0] * patch[1] * patch[2]);
  let max = 0;
  let o = 0;
  for (let i = 0; i < patch[0]; i++)
    for (let j = 0; j < patch[1]; j++)
      for (let k = 0; k < patch[2]; k++, o++) {
        const v = k0[i]! * k1[j]! * k2[k]!;
        raw[o] = v;
        if (v > max) max = v;
      }
  const out = new Float32Array(raw.length);
  const divisor = max / 10;
  let minPositive = Infinity;
  for (let v = 0; v < raw.length; v++) {
    out[v] = f16round(Math.fround(raw[v]! / divisor));
    if (out[v]! > 0 && out[v]! < minPositive) minPositive = out[v]!;
  }
  for (let v = 0; v < out.length; v++) if (out[v] === 0) out[v] = minPositive;
  return out;
}

/** pad_nd_image(mode constant 0) to at least the patch: the odd voxel after (acvl_utils padding.py). */
function padToPatch(
  data: Float32Array,
  shape: Shape3,
  patch: Shape3,
): { data: Float32Array; shape: Shape3; before: Shape3 } {
  const padded = shape.map((n, a) => Math.max(n, patch[a]!)) as Shape3;
  const before = padded.map((n, a) => Math.floor((n - shape[a]!) / 2)) as Shape3;
  if (padded.every((n, a) => n === shape[a])) return { data, shape, before };
  const out = new Float32Array(padded[0] * padded[1] * padded[2]);
  for (let i = 0; i < shape[0]; i++)
    for (let j = 0; j < shape[1]; j++) {
      const src = (i * shape[1] + j) * shape[2];
      const dst = ((i + before[0]) * padded[1] + j + before[1]) * padded[2] + before[2];
      out.set(data.subarray(src, src + shape[2]), dst);
    }
  return { data: out, shape: padded, before };
}

/** Every non-empty combination of the mirror axes, by size, as itertools.combinations lists them (:573-590). */
export function mirrorCombinations(axes: readonly number[]): number[][] {
  const out: number[][] = [];
  const choose = (start: number, k: number, acc: number[]) => {
    if (acc.length === k) {
      out.push([...acc]);
      return;
    }
    for (let i = start; i < axes.length; i++) choose(i + 1, k, [...acc, axes[i]!]);
  };
  for (let k = 1; k <= axes.length; k++) choose(0, k, []);
  return out;
}

export interface NnunetWindowOptions {
  /** [p0, p1, p2]; a 2D configuration's is [1, y, x] */
  patch: Shape3;
  is2d: boolean;
  stepSize: number;
  /** array axes to mirror (nnU-Net's axes; +1 for a 2D configuration) */
  mirrorAxes: readonly number[];
  classes: number;
  float16: boolean;
  /** a network per fold, applied in order */
  folds: readonly TileNetwork[];
}

/**
 * predict_logits_from_preprocessed_data (predict_from_raw_data.py:500-535) on one channel: per fold, the padded
 * image's tiles (order: axis 0 outermost), each the mean of its mirrored predictions in float32, times the Gaussian,
 * added into the logits and weight accumulators (float16 when asked, as torch.half on CPU: float32 sum rounded to
 * half); the logits divided by the weights; folds summed and divided by their count (float16 again); padding removed.
 * Returns [C, d0, d1, d2] float32 holding float16 values when float16.
 */
export async function nnunetSlidingWindow(
  data: Float32Array,
  shape: Shape3,
  o: NnunetWindowOptions,
): Promise<Float32Array> {
  const r = o.float16 ? (v: number) => f16roundFromFloat32(Math.fround(v)) : Math.fround;
  const padded = padToPatch(data, shape, o.patch);
  const [P0, P1, P2] = padded.shape;
  const [p0, p1, p2] = o.patch;
  const steps = [
    o.is2d ? Array.from({ length: P0 }, (_, i) => i) : nnunetSteps(P0, p0, o.stepSize),
    nnunetSteps(P1, p1, o.stepSize),
    nnunetSteps(P2, p2, o.stepSize),
  ];
  const gaussian = nnunetGaussian(o.patch, o.is2d);
  const tileVol = p0 * p1 * p2;
  const combos = mirrorCombinations(o.mirrorAxes);
  const nVariants = combos.length + 1;
  const padVol = P0 * P1 * P2;
  const C = o.classes;
  const tiles = new Float32Array(nVariants * tileVol);
  const pred = new Float32Array(C * tileVol);
  const flipped = new Float32Array(C * tileVol);
  let total: Float32Array | undefined;
  for (const network of o.folds) {
    const logits = new Float32Array(C * padVol);
    const weights = new Float32Array(padVol);
    for (const s0 of steps[0]!)
      for (const s1 of steps[1]!)
        for (const s2 of steps[2]!) {
          // cut the tile once, then its mirrorings; all go to the network in one call
          for (let i = 0; i < p0; i++)
            for (let j = 0; j < p1; j++) {
              const src = ((s0 + i) * P1 + s1 + j) * P2 + s2;
              tiles.set(padded.data.subarray(src, src + p2), (i * p1 + j) * p2);
            }
          for (const [v, axes] of combos.entries()) flipCopy(tiles, 0, tiles, (v + 1) * tileVol, o.patch, 1, axes);
          const out = await network(tiles, nVariants, o.patch);
          // prediction = net(x); prediction += flip(net(flip(x))) for each combination; prediction /= count (float32)
          pred.set(out.subarray(0, C * tileVol));
          for (const [v, axes] of combos.entries()) {
            flipCopy(out, (v + 1) * C * tileVol, flipped, 0, o.patch, C, axes);
            for (let x = 0; x < pred.length; x++) pred[x] = pred[x]! + flipped[x]!;
          }
          if (combos.length) for (let x = 0; x < pred.length; x++) pred[x] = pred[x]! / nVariants;
          for (let c = 0; c < C; c++) {
            let t = c * tileVol;
            for (let i = 0; i < p0; i++)
              for (let j = 0; j < p1; j++) {
                let dst = c * padVol + ((s0 + i) * P1 + s1 + j) * P2 + s2;
                const g0 = (i * p1 + j) * p2;
                for (let k = 0; k < p2; k++, t++, dst++)
                  logits[dst] = r(logits[dst]! + Math.fround(pred[t]! * gaussian[g0 + k]!));
              }
          }
          for (let i = 0; i < p0; i++)
            for (let j = 0; j < p1; j++) {
              let dst = ((s0 + i) * P1 + s1 + j) * P2 + s2;
              const g0 = (i * p1 + j) * p2;
              for (let k = 0; k < p2; k++, dst++) weights[dst] = r(weights[dst]! + gaussian[g0 + k]!);
            }
        }
    for (let c = 0; c < C; c++)
      for (let v = 0; v < padVol; v++) logits[c * padVol + v] = r(logits[c * padVol + v]! / weights[v]!);
    if (!total) total = logits;
    else for (let x = 0; x < total.length; x++) total[x] = r(total[x]! + logits[x]!);
  }
  if (!total) throw new DelineateError("DLN_ERR_MODEL_INVALID", "the model package lists no ONNX files (folds)");
  if (o.folds.length > 1) for (let x = 0; x < total.length; x++) total[x] = r(total[x]! / o.folds.length);
  // revert the padding
  if (padded.shape.every((n, a) => n === shape[a])) return total;
  const out = new Float32Array(C * shape[0] * shape[1] * shape[2]);
  const [b0, b1, b2] = padded.before;
  for (let c = 0; c < C; c++)
    for (let i = 0; i < shape[0]; i++)
      for (let j = 0; j < shape[1]; j++) {
        const src = c * padVol + ((i + b0) * P1 + j + b1) * P2 + b2;
        out.set(total.subarray(src, src + shape[2]), ((c * shape[0] + i) * shape[1] + j) * shape[2]);
      }
  return out;
}
