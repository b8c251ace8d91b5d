/**
 * The way back (nnunetv2/inference/export_prediction.py:14-71,
 * convert_predicted_logits_to_segmentation_with_correct_shape): the logits resampled to the cropped shape with
 * resampling_fn_probabilities (order 1, nearest along a separate z), stored in the logits' dtype (float16 for
 * nnU-Net), softmax in float32, argmax (first maximum wins), put back into the uncropped shape (label 0 and
 * probability 1 for background outside the box), transpose_backward.
 */

import type { NnunetConfig } from "../../models/nnunetConfig.js";
import { f16round } from "./half.js";
import type { Preprocessed } from "./preprocess.js";
import { transpose3 } from "./preprocess.js";
import { resampleToShape, type Shape3 } from "./resample.js";

export interface NnunetResult {
  /** labels in the input image's array order (nnU-Net's: NIfTI voxel axes reversed) */
  labels: Uint8Array;
  /** [C, ...input shape] softmax probabilities, when asked for */
  probabilities?: Float32Array;
  shape: Shape3;
}

export function exportNnunet(
  logits: Float32Array,
  pre: Preprocessed,
  config: NnunetConfig,
  withProbabilities: boolean,
): NnunetResult {
  const C = config.classes;
  const half = config.accumulate === "float16";
  const vol = pre.shape[0] * pre.shape[1] * pre.shape[2];
  const cs = pre.shapeAfterCropping;
  const cropVol = cs[0] * cs[1] * cs[2];
  const back = new Float32Array(C * cropVol);
  const r = config.resampling;
  for (let c = 0; c < C; c++) {
    const ch = Float64Array.from(logits.subarray(c * vol, (c + 1) * vol));
    // current spacing: the configuration's (with the image's own along axis 0 in 2D); new: the image's (:25-33)
    const res = resampleToShape(
      ch,
      pre.shape,
      cs,
      pre.targetSpacing,
      pre.spacing,
      r.probabilitiesOrder,
      r.probabilitiesOrderZ,
      r.forceSeparateZ,
    );
    const dst = back.subarray(c * cropVol, (c + 1) * cropVol);
    for (let v = 0; v < cropVol; v++) dst[v] = half ? f16round(res[v]!) : res[v]!; // numpy casts float64 to float16 directly (one rounding)
  }
  // softmax (label_handling.py:128-141) and argmax (:178) inside the crop box
  const cropLabels = new Uint8Array(cropVol);
  const cropProbs = withProbabilities ? new Float32Array(C * cropVol) : undefined;
  const p = new Float64Array(C);
  const pf = new Float32Array(C);
  for (let v = 0; v < cropVol; v++) {
    let max = -Infinity;
    for (let c = 0; c < C; c++) max = Math.max(max, back[c * cropVol + v]!);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += p[c] = Math.exp(back[c * cropVol + v]! - max);
    let best = 0;
    for (let c = 0; c < C; c++) {
      pf[c] = p[c]! / sum;
      if (pf[c]! > pf[best]!) best = c;
    }
    cropLabels[v] = best;
    if (cropProbs) for (let c = 0; c < C; c++) cropProbs[c * cropVol + v] = pf[c]!;
  }
  // into the shape before cropping (:44-47; label_handling.py:197-220)
  const full = pre.shapeBeforeCropping;
  const fullVol = full[0] * full[1] * full[2];
  const labelsT = new Uint8Array(fullVol);
  const probsT = cropProbs ? new Float32Array(C * fullVol) : undefined;
  if (probsT) probsT.fill(1, 0, fullVol);
  const [[a0], [a1], [a2]] = pre.bbox;
  for (let i = 0; i < cs[0]; i++)
    for (let j = 0; j < cs[1]; j++) {
      const src = (i * cs[1] + j) * cs[2];
      const dst = ((i + a0) * full[1] + j + a1) * full[2] + a2;
      labelsT.set(cropLabels.subarray(src, src + cs[2]), dst);
      if (probsT && cropProbs)
        for (let c = 0; c < C; c++)
          probsT.set(cropProbs.subarray(c * cropVol + src, c * cropVol + src + cs[2]), c * fullVol + dst);
    }
  // transpose_backward (:55, :65-66)
  const perm = config.transposeBackward;
  const shape = perm.map((a) => full[a]!) as Shape3;
  const labels = transpose3(labelsT, full, perm);
  let probabilities: Float32Array | undefined;
  if (probsT) {
    probabilities = new Float32Array(C * fullVol);
    for (let c = 0; c < C; c++)
      probabilities.set(transpose3(probsT.subarray(c * fullVol, (c + 1) * fullVol), full, perm), c * fullVol);
  }
  return { labels, shape, ...(probabilities ? { probabilities } : {}) };
}
