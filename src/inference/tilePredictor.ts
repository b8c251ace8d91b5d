/**
 * A model's folds as the one network the sliding window runs: whole networks give logits, averaged over folds;
 * networks with their head split off (headSplit.ts) give features, laid side by side, and one head that averages
 * the folds' heads, applied per finished row with the softmax.
 */
import ort from "onnxruntime-node";
import type { DelineateError } from "../errors.js";
import type { ConvHead } from "./headSplit.js";
import type { ModelSession } from "./session.js";
import type { Dims, Predict } from "./slidingWindow.js";

/** A fold: an onnxruntime session of the whole network, or a session as createSession made it (maybe split). */
export type Network = ort.InferenceSession | ModelSession;

export interface TilePredictor {
  /** what `predict` gives per voxel: the classes, or (with a head) every fold's features */
  channels: number;
  predict: Predict;
  /** present when any fold was split: logits = weight · (the folds' features) + bias, the folds averaged */
  head?: ConvHead;
  sessions: ort.InferenceSession[];
}

/**
 * The folds as one Predict over [n, 1, Z, Y, X] (2D: [n, 1, Y, X]) tiles. `fail` makes the error for a network
 * that fails or gives an output of the wrong shape.
 */
export function tilePredictor(
  networks: readonly Network[],
  io: { input: string; output: string; classes: number; twoD: boolean },
  fail: (why: string, cause?: unknown) => DelineateError,
): TilePredictor {
  const folds = networks.map((n) => ("session" in n ? n : { session: n }));
  const split = folds.some((f) => f.split);
  // an unsplit fold among split ones gives its logits as "features", with the identity as its head
  const perFold = folds.map((f) => (split ? (f.split?.head.features ?? io.classes) : io.classes));
  const channels = split ? perFold.reduce((a, b) => a + b, 0) : io.classes;
  const run = async (f: number, tiles: Float32Array, shape: number[]): Promise<Float32Array> => {
    const fold = folds[f]!;
    const name = fold.split?.featureOutput ?? io.output;
    let result: ort.InferenceSession.OnnxValueMapType;
    try {
      result = await fold.session.run({ [io.input]: new ort.Tensor("float32", tiles, shape) });
    } catch (err) {
      throw fail(err instanceof Error ? err.message : String(err), err);
    }
    const out = result[name];
    const want = [shape[0]!, perFold[f]!, ...shape.slice(2)];
    if (!out || out.dims.length !== want.length || out.dims.some((d, i) => d !== want[i]))
      throw fail(`output "${name}" has shape [${out?.dims.join(", ")}], expected [${want.join(", ")}]`);
    return out.data as Float32Array;
  };
  const predict: Predict = async (tiles, n, [tx, ty, tz]: Dims) => {
    const shape = io.twoD ? [n, 1, ty, tx] : [n, 1, tz, ty, tx];
    if (folds.length === 1) return run(0, tiles, shape);
    const vol = tx * ty * (io.twoD ? 1 : tz);
    const out = new Float32Array(n * channels * vol);
    let first = 0;
    for (let f = 0; f < folds.length; f++) {
      const data = await run(f, tiles, shape);
      // split: each item's channels go after the earlier folds'; whole: nnU-Net sums the folds' logits and divides
      if (split)
        for (let b = 0; b < n; b++)
          out.set(data.subarray(b * perFold[f]! * vol, (b + 1) * perFold[f]! * vol), (b * channels + first) * vol);
      else for (let i = 0; i < out.length; i++) out[i]! += data[i]! / folds.length;
      first += perFold[f]!;
    }
    return out;
  };
  return {
    channels,
    predict,
    sessions: folds.map((f) => f.session),
    ...(split ? { head: foldsHead(folds, perFold, io.classes, channels) } : {}),
  };
}

/** The folds' heads as one over their features side by side: each fold's weights and bias divided by the folds' count. */
function foldsHead(
  folds: readonly ModelSession[],
  perFold: readonly number[],
  classes: number,
  channels: number,
): ConvHead {
  const weight = new Float32Array(classes * channels);
  const bias = new Float32Array(classes);
  const n = folds.length;
  let first = 0;
  folds.forEach((fold, f) => {
    const h = fold.split?.head;
    for (let k = 0; k < classes; k++) {
      if (h) {
        for (let c = 0; c < h.features; c++) weight[k * channels + first + c] = h.weight[k * h.features + c]! / n;
        bias[k]! += h.bias[k]! / n;
      } else weight[k * channels + first + k] = 1 / n;
    }
    first += perFold[f]!;
  });
  return { weight, bias, classes, features: channels };
}

/**
 * Softmax over the classes of one row's logits made by `head` from its features (feature c, voxel x at
 * `features[offset + c · stride + x]`), cropped to the first `mx` voxels, into `probs` ([K, mx]). Each logit is
 * summed in double precision and rounded to float32, as the network's own output would be, before the softmax.
 */
export function headSoftmaxRow(
  head: ConvHead,
  features: Float32Array,
  offset: number,
  stride: number,
  mx: number,
  probs: Float32Array,
  logits: Float32Array,
): void {
  const { weight, bias, classes, features: channels } = head;
  const f = new Float64Array(channels);
  for (let i = 0; i < mx; i++) {
    for (let c = 0; c < channels; c++) f[c] = features[offset + c * stride + i]!;
    let max = -Infinity;
    for (let k = 0; k < classes; k++) {
      let a = bias[k]!;
      for (let c = 0, w = k * channels; c < channels; c++) a += weight[w + c]! * f[c]!;
      logits[k] = a;
      max = Math.max(max, logits[k]!);
    }
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += logits[k] = Math.exp(logits[k]! - max);
    for (let k = 0; k < classes; k++) probs[k * mx + i] = logits[k]! / sum;
  }
}
