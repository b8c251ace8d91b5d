/**
 * nnU-Net v2's resampling (nnunetv2/preprocessing/resampling/default_resampling.py), in float64 as it computes:
 * `resample_data_or_seg_to_shape` with is_seg false, i.e. scikit-image 0.19's `resize(order, mode='edge',
 * anti_aliasing=False)` — which is `scipy.ndimage.zoom(grid_mode=True, mode='nearest')` followed by a clip to the
 * input's range — either in 3D, or slice by slice in 2D followed by `map_coordinates(order=order_z, mode='nearest')`
 * along the thick axis (the separate-z rule).
 *
 * Arrays are C-order [d0, d1, d2] (d2 fastest), nnU-Net's axis order.
 */

import { DelineateError } from "../../errors.js";
import { roundHalfEven } from "./half.js";

export type Shape3 = [number, number, number];

/** ANISO_THRESHOLD (nnunetv2/configuration.py:7) */
const ANISO_THRESHOLD = 3;
/** scipy.ndimage pads by 12 edge voxels before the spline prefilter in 'nearest' mode (_prepad_for_spline_filter) */
const SPLINE_PAD = 12;
/** the cubic B-spline's pole, sqrt(3) - 2 */
const POLE = Math.sqrt(3) - 2;

/** compute_new_shape (default_resampling.py:24-30): round(old_spacing / new_spacing * old_shape), Python's round. */
export function computeNewShape(shape: readonly number[], spacing: readonly number[], newSpacing: readonly number[]) {
  return shape.map((n, a) => roundHalfEven((spacing[a]! / newSpacing[a]!) * n)) as Shape3;
}

/**
 * The axis to resample separately, or undefined for one n-D resize (default_resampling.py:33-66): the current
 * spacing is checked first, then the new one; anisotropic means max/min > 3, and only when exactly one axis has the
 * largest spacing.
 */
export function separateZAxis(
  spacing: readonly number[],
  newSpacing: readonly number[],
  force: boolean | null = null,
): number | undefined {
  const aniso = (s: readonly number[]) => Math.max(...s) / Math.min(...s) > ANISO_THRESHOLD;
  const lowres = (s: readonly number[]) => {
    const max = Math.max(...s);
    const axes = s.flatMap((v, a) => (max / v === 1 ? [a] : []));
    return axes.length === 1 ? axes[0] : undefined;
  };
  if (force === false) return undefined;
  if (force === true) return lowres(spacing);
  if (aniso(spacing)) return lowres(spacing);
  if (aniso(newSpacing)) return lowres(newSpacing);
  return undefined;
}

/** In-place cubic B-spline prefilter of one line, as scipy's ni_splines.c does for mode 'nearest' (reflect init). */
function splineFilterLine(c: Float64Array, n: number): void {
  if (n < 2) return;
  const z = POLE;
  const gain = (1 - z) * (1 - 1 / z);
  for (let i = 0; i < n; i++) c[i] = c[i]! * gain;
  // causal initialisation for a half-sample symmetric (reflect) extension
  const zn = z ** n;
  const c0 = c[0]!;
  let sum = c[0]! + zn * c[n - 1]!;
  let zi = z;
  for (let i = 1; i < n; i++) {
    sum += zi * (c[i]! + zn * c[n - 1 - i]!);
    zi *= z;
  }
  c[0] = sum * (z / (1 - zn * zn)) + c0;
  for (let i = 1; i < n; i++) c[i] = c[i]! + z * c[i - 1]!;
  c[n - 1] = c[n - 1]! * (z / (z - 1));
  for (let i = n - 2; i >= 0; i--) c[i] = z * (c[i + 1]! - c[i]!);
}

/**
 * Resizes along one axis with scipy's zoom semantics (grid_mode=True, mode='nearest'): output voxel k samples the
 * input at (k + 0.5) * n / m - 0.5, with a cubic B-spline (order 3, on coefficients of the line padded by 12 edge
 * voxels) or linearly (order 1, clamped to [0, n - 1]). Separable: applying it
 * axis after axis equals scipy's tensor-product interpolation.
 */
function zoomAxis(src: Float64Array, shape: Shape3, axis: number, m: number, order: 1 | 3): Float64Array {
  const n = shape[axis]!;
  const outShape = [...shape] as Shape3;
  outShape[axis] = m;
  const out = new Float64Array(outShape[0] * outShape[1] * outShape[2]);
  const strideIn = axis === 0 ? shape[1] * shape[2] : axis === 1 ? shape[2] : 1;
  const strideOut = axis === 0 ? outShape[1] * outShape[2] : axis === 1 ? outShape[2] : 1;
  // per output index: first input (padded) index and weights
  const taps = order === 3 ? 4 : 2;
  const first = new Int32Array(m);
  const weights = new Float64Array(m * taps);
  const scale = n / m;
  for (let k = 0; k < m; k++) {
    // order 3 samples the coefficients of the line padded by 12 (scipy shifts the coordinate into the padded
    // array, so nothing is clamped within half a voxel of the edge); order 1 has no padding and clamps to the
    // first / last voxel (map_coordinate's 'nearest')
    let cc = (k + 0.5) * scale - 0.5;
    if (order === 1) cc = Math.min(Math.max(cc, 0), n - 1);
    const f = Math.floor(cc);
    const t = cc - f;
    if (order === 3) {
      first[k] = f - 1 + SPLINE_PAD;
      const t2 = t * t,
        t3 = t2 * t,
        u = 1 - t;
      weights[k * 4] = (u * u * u) / 6;
      weights[k * 4 + 1] = (4 - 6 * t2 + 3 * t3) / 6;
      weights[k * 4 + 2] = (1 + 3 * t + 3 * t2 - 3 * t3) / 6;
      weights[k * 4 + 3] = t3 / 6;
    } else {
      first[k] = f;
      weights[k * 2] = 1 - t;
      weights[k * 2 + 1] = t;
    }
  }
  const padded = order === 3 ? n + 2 * SPLINE_PAD : n + 1;
  const line = new Float64Array(padded);
  // lines along `axis`: iterate the other two axes
  const [a1, a2] = [0, 1, 2].filter((a) => a !== axis) as [number, number];
  const s1In = a1 === 0 ? shape[1] * shape[2] : a1 === 1 ? shape[2] : 1;
  const s2In = a2 === 0 ? shape[1] * shape[2] : a2 === 1 ? shape[2] : 1;
  const s1Out = a1 === 0 ? outShape[1] * outShape[2] : a1 === 1 ? outShape[2] : 1;
  const s2Out = a2 === 0 ? outShape[1] * outShape[2] : a2 === 1 ? outShape[2] : 1;
  const n1 = shape[a1]!,
    n2 = shape[a2]!;
  for (let p = 0; p < n1; p++)
    for (let q = 0; q < n2; q++) {
      const baseIn = p * s1In + q * s2In;
      const baseOut = p * s1Out + q * s2Out;
      if (order === 3) {
        for (let i = 0; i < n; i++) line[i + SPLINE_PAD] = src[baseIn + i * strideIn]!;
        const lo = line[SPLINE_PAD]!,
          hi = line[SPLINE_PAD + n - 1]!;
        for (let i = 0; i < SPLINE_PAD; i++) {
          line[i] = lo;
          line[SPLINE_PAD + n + i] = hi;
        }
        splineFilterLine(line, padded);
        for (let k = 0; k < m; k++) {
          const f = first[k]!,
            w = k * 4;
          out[baseOut + k * strideOut] =
            weights[w]! * line[f]! +
            weights[w + 1]! * line[f + 1]! +
            weights[w + 2]! * line[f + 2]! +
            weights[w + 3]! * line[f + 3]!;
        }
      } else {
        for (let i = 0; i < n; i++) line[i] = src[baseIn + i * strideIn]!;
        line[n] = line[n - 1]!; // t is 0 at the clamped last index; the extra tap only needs to be finite
        for (let k = 0; k < m; k++) {
          const f = first[k]!,
            w = k * 2;
          out[baseOut + k * strideOut] = weights[w]! * line[f]! + weights[w + 1]! * line[f + 1]!;
        }
      }
    }
  return out;
}

/**
 * Linear zoom with scipy's own arithmetic (ni_interpolation.c NI_ZoomShift, ni_splines.c
 * get_spline_interpolation_weights), to the last bit: per axis cc = ((k + 0.5) * zoom) - 0.5 with zoom = n / m, not
 * clamped ('nearest' maps the taps, not the coordinate), weights w0 = 1 - x and w1 = 1 - w0; per voxel the 8 taps
 * (last axis fastest), each value times w_axis0, w_axis1, w_axis2 in turn, summed from 0. nnU-Net rounds the result
 * to float16, where a last-bit difference can move a value across a rounding boundary; exactness matters here.
 */
function zoomLinearExact(src: Float64Array, shape: Shape3, newShape: Shape3): Float64Array {
  const axes = [0, 1, 2].map((a) => {
    const n = shape[a]!,
      m = newShape[a]!;
    const zoom = n / m;
    const lo = new Int32Array(m),
      hi = new Int32Array(m),
      w0 = new Float64Array(m),
      w1 = new Float64Array(m);
    for (let k = 0; k < m; k++) {
      let cc = k;
      cc += 0.5;
      cc *= zoom;
      cc -= 0.5;
      const start = Math.floor(cc);
      const x = cc - start;
      w0[k] = 1.0 - x;
      w1[k] = 1.0 - w0[k]!;
      lo[k] = Math.min(Math.max(start, 0), n - 1);
      hi[k] = Math.min(Math.max(start + 1, 0), n - 1);
    }
    return { lo, hi, w0, w1 };
  });
  const [A0, A1, A2] = axes as [(typeof axes)[0], (typeof axes)[0], (typeof axes)[0]];
  const [m0, m1, m2] = newShape;
  const s0 = shape[1] * shape[2],
    s1 = shape[2];
  const out = new Float64Array(m0 * m1 * m2);
  let o = 0;
  for (let i = 0; i < m0; i++) {
    const i0 = A0.lo[i]! * s0,
      i1 = A0.hi[i]! * s0,
      a0 = A0.w0[i]!,
      a1 = A0.w1[i]!;
    for (let j = 0; j < m1; j++) {
      const j0 = A1.lo[j]! * s1,
        j1 = A1.hi[j]! * s1,
        b0 = A1.w0[j]!,
        b1 = A1.w1[j]!;
      for (let k = 0; k < m2; k++, o++) {
        const k0 = A2.lo[k]!,
          k1 = A2.hi[k]!,
          c0 = A2.w0[k]!,
          c1 = A2.w1[k]!;
        let t = 0.0;
        t += src[i0 + j0 + k0]! * a0 * b0 * c0;
        t += src[i0 + j0 + k1]! * a0 * b0 * c1;
        t += src[i0 + j1 + k0]! * a0 * b1 * c0;
        t += src[i0 + j1 + k1]! * a0 * b1 * c1;
        t += src[i1 + j0 + k0]! * a1 * b0 * c0;
        t += src[i1 + j0 + k1]! * a1 * b0 * c1;
        t += src[i1 + j1 + k0]! * a1 * b1 * c0;
        t += src[i1 + j1 + k1]! * a1 * b1 * c1;
        out[o] = t;
      }
    }
  }
  return out;
}

/** skimage.transform.resize(order, mode='edge', anti_aliasing=False) of a [d0, d1, d2] array (d0 may be 1 for 2D). */
export function resizeLikeSkimage(src: Float64Array, shape: Shape3, newShape: Shape3, order: 1 | 3): Float64Array {
  if (order === 1) return clipToRange(zoomLinearExact(src, shape, newShape), src);
  let cur = src,
    curShape = [...shape] as Shape3;
  for (let a = 0; a < 3; a++) {
    // an axis whose size does not change: scipy's prefilter then samples at the nodes, the identity to ~1e-15
    const m = newShape[a]!;
    if (curShape[a] === m) continue;
    cur = zoomAxis(cur, curShape, a, m, order);
    curShape[a] = m;
  }
  return clipToRange(cur === src ? Float64Array.from(src) : cur, src);
}

/** skimage's _clip_warp_output: an interpolating spline overshoots; the result is clipped to the input's range. */
function clipToRange(cur: Float64Array, src: Float64Array): Float64Array {
  let min = Infinity,
    max = -Infinity;
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  for (let i = 0; i < cur.length; i++) cur[i] = Math.min(Math.max(cur[i]!, min), max);
  return cur;
}

/** map_coordinates(order=0, mode='nearest') along one axis on align_corners=False coordinates (default_resampling.py:143-189). */
function nearestAlongAxis(src: Float64Array, shape: Shape3, axis: number, m: number): Float64Array {
  const n = shape[axis]!;
  const outShape = [...shape] as Shape3;
  outShape[axis] = m;
  const index = new Int32Array(m);
  const scale = n / m;
  for (let k = 0; k < m; k++) {
    const cc = Math.min(Math.max(scale * (k + 0.5) - 0.5, 0), n - 1);
    index[k] = Math.floor(cc + 0.5); // scipy's order-0 start: floor(cc + 0.5)
  }
  const out = new Float64Array(outShape[0] * outShape[1] * outShape[2]);
  for (let i = 0; i < outShape[0]; i++)
    for (let j = 0; j < outShape[1]; j++)
      for (let k = 0; k < outShape[2]; k++) {
        const si = axis === 0 ? index[i]! : i,
          sj = axis === 1 ? index[j]! : j,
          sk = axis === 2 ? index[k]! : k;
        out[(i * outShape[1] + j) * outShape[2] + k] = src[(si * shape[1] + sj) * shape[2] + sk]!;
      }
  return out;
}

/** Extracts slice `s` across `axis` as a 2D array ([1, p, q] shape), in the order numpy's indexing gives it. */
function sliceAcross(src: Float64Array, shape: Shape3, axis: number, s: number): [Float64Array, Shape3] {
  const dims = [0, 1, 2].filter((a) => a !== axis).map((a) => shape[a]!) as [number, number];
  const out = new Float64Array(dims[0] * dims[1]);
  for (let p = 0; p < dims[0]; p++)
    for (let q = 0; q < dims[1]; q++) {
      const idx = axis === 0 ? [s, p, q] : axis === 1 ? [p, s, q] : [p, q, s];
      out[p * dims[1] + q] = src[(idx[0]! * shape[1] + idx[1]!) * shape[2] + idx[2]!]!;
    }
  return [out, [1, dims[0], dims[1]]];
}

/**
 * resample_data_or_seg (default_resampling.py:89-196) for one channel: nothing when the shape already matches;
 * otherwise, with a separate axis, each slice across it resized in 2D (order) and then, if the slice count changes,
 * nearest (order_z 0) or linear (order_z 1) along it; without one, a single 3D resize. Returns float64; the caller
 * casts to the input's dtype, as nnU-Net does (:195).
 */
export function resampleToShape(
  src: Float64Array,
  shape: Shape3,
  newShape: Shape3,
  spacing: readonly number[],
  newSpacing: readonly number[],
  order: 1 | 3,
  orderZ: 0 | 1 = 0,
  forceSeparateZ: boolean | null = null,
): Float64Array {
  if (shape.every((n, a) => n === newShape[a])) return src;
  const axis = separateZAxis(spacing, newSpacing, forceSeparateZ);
  if (axis === undefined) return resizeLikeSkimage(src, shape, newShape, order);
  const inPlane = [0, 1, 2].filter((a) => a !== axis).map((a) => newShape[a]!) as [number, number];
  const midShape = [...newShape] as Shape3;
  midShape[axis] = shape[axis]!;
  const mid = new Float64Array(midShape[0] * midShape[1] * midShape[2]);
  for (let s = 0; s < shape[axis]!; s++) {
    const [slice, sliceShape] = sliceAcross(src, shape, axis, s);
    const r = resizeLikeSkimage(slice, sliceShape, [1, inPlane[0], inPlane[1]], order);
    for (let p = 0; p < inPlane[0]; p++)
      for (let q = 0; q < inPlane[1]; q++) {
        const idx = axis === 0 ? [s, p, q] : axis === 1 ? [p, s, q] : [p, q, s];
        mid[(idx[0]! * midShape[1] + idx[1]!) * midShape[2] + idx[2]!] = r[p * inPlane[1] + q]!;
      }
  }
  if (midShape[axis] === newShape[axis]) return mid;
  if (orderZ !== 0)
    throw new DelineateError("DLN_ERR_MODEL_INVALID", "nnU-Net resampling with order_z other than 0 is not supported");
  return nearestAlongAxis(mid, midShape, axis, newShape[axis]!);
}
