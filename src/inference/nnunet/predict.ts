/** nnU-Net v2's predictor for one image, end to end: preprocess, sliding window over every fold, the way back. */

import ort from "onnxruntime-node";
import { DelineateError } from "../../errors.js";
import type { NnunetConfig } from "../../models/nnunetConfig.js";
import { exportNnunet, type NnunetResult } from "./export.js";
import { type Preprocessed, preprocessNnunet } from "./preprocess.js";
import type { Shape3 } from "./resample.js";
import { nnunetSlidingWindow, type TileNetwork } from "./slidingWindow.js";

/** An onnxruntime session as a tile network: [n, 1, ...tile] in (2D: [n, 1, y, x]), [n, C, ...] out. */
export function onnxTileNetwork(
  session: ort.InferenceSession,
  is2d: boolean,
  inputName = "image",
  outputName = "logits",
): TileNetwork {
  return async (tiles, n, tile) => {
    const dims = is2d ? [n, 1, tile[1], tile[2]] : [n, 1, ...tile];
    const feeds = { [inputName]: new ort.Tensor("float32", tiles.subarray(0, n * tile[0] * tile[1] * tile[2]), dims) };
    const out = await session.run(feeds);
    const t = out[outputName];
    if (!t || !(t.data instanceof Float32Array))
      throw new DelineateError("DLN_ERR_INFERENCE", `the network gave no float32 output "${outputName}"`);
    return t.data;
  };
}

export interface NnunetPrediction extends NnunetResult {
  preprocessed: Preprocessed;
  /** the fold- and mirror-averaged logits on the network grid, [C, ...preprocessed.shape] */
  logits: Float32Array;
}

/**
 * `image`: one channel as nnU-Net reads it (NIfTI voxel axes reversed, C-order), its `spacing` in the same order.
 * Labels (and probabilities) come back in the same order and shape.
 */
export async function predictNnunet(
  image: Float32Array,
  shape: Shape3,
  spacing: readonly number[],
  config: NnunetConfig,
  folds: readonly TileNetwork[],
  withProbabilities = false,
): Promise<NnunetPrediction> {
  const is2d = config.patchSize.length === 2;
  const pre = preprocessNnunet(image, shape, spacing, config);
  const patch = (is2d ? [1, ...config.patchSize] : [...config.patchSize]) as Shape3;
  const logits = await nnunetSlidingWindow(pre.data, pre.shape, {
    patch,
    is2d,
    stepSize: config.tileStepSize,
    // nnU-Net's mirror axes count the network's spatial axes; a 2D network's start at array axis 1
    mirrorAxes: config.mirrorAxes.map((a) => (is2d ? a + 1 : a)),
    classes: config.classes,
    float16: config.accumulate === "float16",
    folds,
  });
  return { ...exportNnunet(logits, pre, config, withProbabilities), preprocessed: pre, logits };
}
