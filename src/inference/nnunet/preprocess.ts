/**
 * nnU-Net v2's DefaultPreprocessor for one channel at inference
 * (nnunetv2/preprocessing/preprocessors/default_preprocessor.py:40-90): transpose, crop to the non-zero region,
 * normalise (before resampling), resample to the configuration's spacing. Arrays are C-order in nnU-Net's axis order
 * (the NIfTI voxel axes reversed), float32 as nnU-Net keeps them between steps.
 */

import { DelineateError } from "../../errors.js";
import type { NnunetConfig } from "../../models/nnunetConfig.js";
import { computeNewShape, resampleToShape, type Shape3 } from "./resample.js";

/** data.transpose(perm) of a C-order array: output axis a is input axis perm[a] (default_preprocessor.py:55-59). */
export function transpose3<T extends Float32Array | Uint8Array>(data: T, shape: Shape3, perm: readonly number[]): T {
  const outShape = perm.map((p) => shape[p]!) as Shape3;
  const strides = [shape[1] * shape[2], shape[2], 1];
  const [s0, s1, s2] = perm.map((p) => strides[p]!) as Shape3;
  const out = new (data.constructor as new (n: number) => T)(data.length);
  let o = 0;
  for (let i = 0; i < outShape[0]; i++)
    for (let j = 0; j < outShape[1]; j++) {
      let src = i * s0 + j * s1;
      for (let k = 0; k < outShape[2]; k++, src += s2) out[o++] = data[src]!;
    }
  return out;
}

export type BBox = [[number, number], [number, number], [number, number]];

/**
 * crop_to_nonzero (nnunetv2/preprocessing/cropping/cropping.py:6-39): the mask of voxels ≠ 0 with its holes filled
 * (scipy's binary_fill_holes: background not 6-connected to the border), its half-open bounding box
 * (acvl_utils bounding_boxes.py:120), the image and the filled mask cut to it. An all-zero image keeps its whole box.
 */
export function cropToNonzero(
  data: Float32Array,
  shape: Shape3,
): { bbox: BBox; data: Float32Array; mask: Uint8Array; shape: Shape3 } {
  const [n0, n1, n2] = shape;
  const filled = fillHoles(data, shape);
  const lo = [n0, n1, n2],
    hi = [-1, -1, -1];
  for (let i = 0; i < n0; i++)
    for (let j = 0; j < n1; j++)
      for (let k = 0; k < n2; k++)
        if (filled[(i * n1 + j) * n2 + k]) {
          if (i < lo[0]!) lo[0] = i;
          if (i > hi[0]!) hi[0] = i;
          if (j < lo[1]!) lo[1] = j;
          if (j > hi[1]!) hi[1] = j;
          if (k < lo[2]!) lo[2] = k;
          if (k > hi[2]!) hi[2] = k;
        }
  const bbox: BBox =
    hi[0]! < 0
      ? [
          [0, n0],
          [0, n1],
          [0, n2],
        ]
      : [
          [lo[0]!, hi[0]! + 1],
          [lo[1]!, hi[1]! + 1],
          [lo[2]!, hi[2]! + 1],
        ];
  const cs = bbox.map(([a, b]) => b - a) as Shape3;
  const out = new Float32Array(cs[0] * cs[1] * cs[2]);
  const mask = new Uint8Array(out.length);
  let o = 0;
  for (let i = bbox[0][0]; i < bbox[0][1]; i++)
    for (let j = bbox[1][0]; j < bbox[1][1]; j++)
      for (let k = bbox[2][0]; k < bbox[2][1]; k++, o++) {
        const s = (i * n1 + j) * n2 + k;
        out[o] = data[s]!;
        mask[o] = filled[s]!;
      }
  return { bbox, data: out, mask, shape: cs };
}

/** Non-zero voxels plus the zero regions no 6-connected path links to the border (scipy.ndimage.binary_fill_holes). */
function fillHoles(data: Float32Array, shape: Shape3): Uint8Array {
  const [n0, n1, n2] = shape;
  const outside = new Uint8Array(data.length); // 1: zero and reached from the border
  const stack: number[] = [];
  const push = (i: number, j: number, k: number) => {
    const v = (i * n1 + j) * n2 + k;
    if (!outside[v] && data[v] === 0) {
      outside[v] = 1;
      stack.push(v);
    }
  };
  for (let i = 0; i < n0; i++)
    for (let j = 0; j < n1; j++)
      for (let k = 0; k < n2; k++)
        if (i === 0 || j === 0 || k === 0 || i === n0 - 1 || j === n1 - 1 || k === n2 - 1) push(i, j, k);
  while (stack.length) {
    const v = stack.pop()!;
    const k = v % n2,
      j = ((v - k) / n2) % n1,
      i = (v - k - j * n2) / (n1 * n2);
    if (i > 0) push(i - 1, j, k);
    if (i < n0 - 1) push(i + 1, j, k);
    if (j > 0) push(i, j - 1, k);
    if (j < n1 - 1) push(i, j + 1, k);
    if (k > 0) push(i, j, k - 1);
    if (k < n2 - 1) push(i, j, k + 1);
  }
  const filled = new Uint8Array(data.length);
  for (let v = 0; v < data.length; v++) filled[v] = outside[v] ? 0 : 1;
  return filled;
}

/** mean and (population) std of the voxels where `mask` is set, or of all (numpy's mean() / std()), in float64. */
function meanStd(data: Float32Array, mask?: Uint8Array): [number, number] {
  let n = 0,
    sum = 0;
  for (let i = 0; i < data.length; i++)
    if (!mask || mask[i]) {
      sum += data[i]!;
      n++;
    }
  const mean = n ? sum / n : 0;
  let ss = 0;
  for (let i = 0; i < data.length; i++)
    if (!mask || mask[i]) {
      const d = data[i]! - mean;
      ss += d * d;
    }
  return [mean, n ? Math.sqrt(ss / n) : 0];
}

/**
 * The configuration's normalisation, in place, in float32 as nnU-Net computes it
 * (nnunetv2/preprocessing/normalization/default_normalization_schemes.py): CTNormalization clips to the training
 * foreground's 0.5 / 99.5 percentiles and z-scores with its mean and std (from plans.json, :58-73); ZScoreNormalization
 * uses the image's own mean and std, over the filled non-zero mask when use_mask_for_norm (:27-55); no normalisation;
 * or rescaling to [0, 1].
 */
export function normalizeNnunet(data: Float32Array, mask: Uint8Array, n: NnunetConfig["normalization"]): void {
  const f = Math.fround;
  switch (n.scheme) {
    case "CTNormalization": {
      const lo = f(n.percentile_00_5),
        hi = f(n.percentile_99_5),
        mean = f(n.mean),
        std = f(Math.max(n.std, 1e-8));
      for (let i = 0; i < data.length; i++) {
        const v = Math.min(Math.max(data[i]!, lo), hi);
        data[i] = f(f(v - mean) / std);
      }
      return;
    }
    case "ZScoreNormalization": {
      const useMask = n.useMaskForNorm;
      const [m, s] = meanStd(data, useMask ? mask : undefined);
      const mean = f(m),
        std = f(Math.max(f(s), 1e-8));
      for (let i = 0; i < data.length; i++) if (!useMask || mask[i]) data[i] = f(f(data[i]! - mean) / std);
      return;
    }
    case "NoNormalization":
      return;
    case "RescaleTo01Normalization": {
      let min = Infinity;
      for (let i = 0; i < data.length; i++) min = Math.min(min, data[i]!);
      let max = -Infinity;
      for (let i = 0; i < data.length; i++) {
        data[i] = f(data[i]! - min);
        max = Math.max(max, data[i]!);
      }
      const d = f(Math.max(max, 1e-8));
      for (let i = 0; i < data.length; i++) data[i] = f(data[i]! / d);
      return;
    }
    default:
      throw new DelineateError(
        "DLN_ERR_MODEL_INVALID",
        `unsupported nnU-Net normalisation ${(n as { scheme: string }).scheme}`,
      );
  }
}

export interface Preprocessed {
  /** the network input, [d0, d1, d2] after transpose, crop, normalisation and resampling */
  data: Float32Array;
  shape: Shape3;
  /** nnU-Net's properties: what the way back needs */
  shapeBeforeCropping: Shape3;
  bbox: BBox;
  shapeAfterCropping: Shape3;
  /** the image's spacing after transpose_forward */
  spacing: [number, number, number];
  /** the spacing resampled to: the configuration's, with the image's own along axis 0 for a 2D configuration */
  targetSpacing: [number, number, number];
}

/**
 * DefaultPreprocessor.run_case_npy for inference (default_preprocessor.py:48-90): `data` is the image as nnU-Net reads
 * it (NIfTI voxel axes reversed), `spacing` likewise.
 */
export function preprocessNnunet(
  image: Float32Array,
  shape: Shape3,
  spacing: readonly number[],
  config: NnunetConfig,
): Preprocessed {
  const perm = config.transposeForward;
  const data0 = transpose3(image, shape, perm);
  const shapeT = perm.map((p) => shape[p]!) as Shape3;
  const spacingT = perm.map((p) => spacing[p]!) as [number, number, number];
  const crop = cropToNonzero(data0, shapeT);
  // a 2D configuration keeps the image's own spacing along axis 0 (default_preprocessor.py:71-77)
  const targetSpacing = (config.spacing.length === 2 ? [spacingT[0], ...config.spacing] : [...config.spacing]) as [
    number,
    number,
    number,
  ];
  const newShape = computeNewShape(crop.shape, spacingT, targetSpacing);
  normalizeNnunet(crop.data, crop.mask, config.normalization);
  const r = config.resampling;
  const resampled = resampleToShape(
    Float64Array.from(crop.data),
    crop.shape,
    newShape,
    spacingT,
    targetSpacing,
    r.dataOrder,
    r.dataOrderZ,
    r.forceSeparateZ,
  );
  return {
    data: Float32Array.from(resampled),
    shape: newShape,
    shapeBeforeCropping: shapeT,
    bbox: crop.bbox,
    shapeAfterCropping: crop.shape,
    spacing: spacingT,
    targetSpacing,
  };
}
