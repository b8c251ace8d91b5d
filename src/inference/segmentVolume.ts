import ort from "onnxruntime-node";
import { DelineateError } from "../errors.js";
import type { ModelManifest } from "../models/manifest.js";
import type { LabelMap, Volume } from "../volume/volume.js";
import { fillHoles, keepLargestComponent, removeSmallComponents } from "./postprocess.js";
import { axisWeights, padEdge, resampleLinear } from "./resample.js";
import { slidingWindow } from "./slidingWindow.js";

type Dims = [number, number, number];

/** What inference needs of a volume: its grid and values (not its references), so it can cross to a worker. */
export type VolumeGrid = Pick<Volume, "dims" | "spacing" | "data" | "seriesInstanceUID">;

/** What preprocessing did, so that postprocessing can undo it. */
export interface PreprocessRecord {
  sourceDims: Dims;
  /** the model grid, before padding */
  modelDims: Dims;
  paddedDims: Dims;
}

/** Resamples to the model's spacing, normalises intensities and pads to the network's size multiple. */
export function preprocess(volume: VolumeGrid, manifest: ModelManifest): { tensor: Float32Array; record: PreprocessRecord } {
  const sourceDims = volume.dims;
  const twoD = manifest.dimensions === 2;
  // a 2D model sees the source's slices as they are: no resampling or padding along z
  const modelDims = sourceDims.map((n, a) => (twoD && a === 2 ? n : Math.max(1, Math.round((n * volume.spacing[a]!) / manifest.input.spacing[a]!)))) as Dims;
  const m = manifest.input.sizeMultiple;
  const patch = manifest.inference.patchSize;
  // at least one patch on every axis, and a whole number of the network's size multiple
  const paddedDims = modelDims.map((n, a) => (twoD && a === 2 ? n : Math.max(Math.ceil(n / m) * m, patch?.[a] ?? 0))) as Dims;
  const resampled = resampleLinear(volume.data, sourceDims, modelDims);
  const background = normalize(resampled, manifest.normalization);
  let tensor: Float32Array;
  if (manifest.input.padding === "edge") tensor = padEdge(resampled, modelDims, paddedDims);
  else {
    tensor = new Float32Array(paddedDims[0] * paddedDims[1] * paddedDims[2]).fill(background);
    for (let k = 0; k < modelDims[2]; k++)
      for (let j = 0; j < modelDims[1]; j++)
        tensor.set(resampled.subarray((k * modelDims[1] + j) * modelDims[0], (k * modelDims[1] + j + 1) * modelDims[0]), (k * paddedDims[1] + j) * paddedDims[0]);
  }
  return { tensor, record: { sourceDims, modelDims, paddedDims } };
}

/**
 * Normalises in place as the manifest says (CT: clip and the training set's mean/std; z-score: this image's
 * statistics, optionally over its non-zero voxels; percentile: clip to this image's percentiles, then z-score).
 * Returns the value constant padding uses.
 */
export function normalize(data: Float32Array, norm: ModelManifest["normalization"]): number {
  if (norm.kind === "ct-clip-zscore") {
    const [lo, hi] = norm.clip;
    for (let i = 0; i < data.length; i++) data[i] = (Math.min(hi, Math.max(lo, data[i]!)) - norm.mean) / norm.std;
    return (lo - norm.mean) / norm.std;
  }
  if (norm.kind === "percentile") {
    const sorted = Float32Array.from(data).sort();
    const at = (p: number) => sorted[Math.round((p / 100) * (sorted.length - 1))]!;
    const [lo, hi] = [at(norm.lower), at(norm.upper)];
    for (let i = 0; i < data.length; i++) data[i] = Math.min(hi, Math.max(lo, data[i]!));
  }
  const inMask = (v: number) => norm.kind !== "zscore" || !norm.nonzeroMask || v !== 0;
  let n = 0, sum = 0, sq = 0;
  for (const v of data) if (inMask(v)) (n++, (sum += v), (sq += v * v));
  const mean = n ? sum / n : 0;
  const std = Math.sqrt(Math.max(0, sq / Math.max(1, n) - mean * mean)) || 1;
  for (let i = 0; i < data.length; i++) data[i] = inMask(data[i]!) ? (data[i]! - mean) / std : 0;
  return 0; // per-image normalisations pad with 0 after normalising, as nnU-Net does
}

/** Softmax over channels of a [C, Z, Y, X] output, cropped to the unpadded model grid: one grid per class. */
export function softmaxCropped(logits: Float32Array, channels: number, record: PreprocessRecord): Float32Array[] {
  const [px, py, pz] = record.paddedDims;
  const [mx, my, mz] = record.modelDims;
  const plane = px * py * pz;
  const probs = Array.from({ length: channels }, () => new Float32Array(mx * my * mz));
  for (let k = 0; k < mz; k++)
    for (let j = 0; j < my; j++)
      for (let i = 0; i < mx; i++) {
        const src = (k * py + j) * px + i, dst = (k * my + j) * mx + i;
        let max = -Infinity;
        for (let c = 0; c < channels; c++) max = Math.max(max, logits[c * plane + src]!);
        let sum = 0;
        for (let c = 0; c < channels; c++) sum += Math.exp(logits[c * plane + src]! - max);
        for (let c = 0; c < channels; c++) probs[c]![dst] = Math.exp(logits[c * plane + src]! - max) / sum;
      }
  return probs;
}

/**
 * Back to the source grid: class probabilities interpolated linearly, then argmax, one source slice at a
 * time, so no full-resolution probability volume is ever held (never nearest-neighbour on labels).
 * Channel c is label value `labelValues[c - 1]`; channel 0 is background.
 */
export function probabilitiesToLabels(probs: Float32Array[], record: PreprocessRecord, labelValues: readonly number[]): LabelMap {
  const [sx, sy, sz] = record.sourceDims;
  const [mx, my, mz] = record.modelDims;
  const wx = axisWeights(mx, sx), wy = axisWeights(my, sy), wz = axisWeights(mz, sz);
  const out = new Uint8Array(sx * sy * sz);
  const best = new Float32Array(sx * sy);
  const zPlane = new Float32Array(mx * my);
  const mPlane = mx * my;
  for (let k = 0; k < sz; k++) {
    best.fill(-1);
    const labels = out.subarray(k * sx * sy, (k + 1) * sx * sy);
    for (const [c, p] of probs.entries()) {
      const z0 = wz.i0[k]! * mPlane, z1 = wz.i1[k]! * mPlane, w = wz.w1[k]!;
      for (let i = 0; i < mPlane; i++) zPlane[i] = p[z0 + i]! * (1 - w) + p[z1 + i]! * w;
      const value = c === 0 ? 0 : labelValues[c - 1]!;
      for (let j = 0; j < sy; j++) {
        const r0 = wy.i0[j]! * mx, r1 = wy.i1[j]! * mx, v = wy.w1[j]!;
        for (let i = 0; i < sx; i++) {
          const a = wx.i0[i]!, b = wx.i1[i]!, u = wx.w1[i]!;
          const q = (zPlane[r0 + a]! * (1 - u) + zPlane[r0 + b]! * u) * (1 - v) + (zPlane[r1 + a]! * (1 - u) + zPlane[r1 + b]! * u) * v;
          const o = j * sx + i;
          if (q > best[o]!) {
            best[o] = q;
            labels[o] = value;
          }
        }
      }
    }
  }
  return { dims: [sx, sy, sz], data: out };
}

/**
 * The network's class probabilities on the model grid (before the way back to the source grid): preprocess, the
 * network over the volume (one pass, or tiles with blending; 2D models slice by slice) for each fold and mirroring,
 * logits averaged, softmax. What the parity test compares with a PyTorch reference.
 */
export async function modelGridProbabilities(volume: VolumeGrid, manifest: ModelManifest, sessions: readonly ort.InferenceSession[]): Promise<{ probs: Float32Array[]; record: PreprocessRecord }> {
  const { tensor, record } = preprocess(volume, manifest);
  const channels = manifest.labels.length + 1;
  const twoD = manifest.dimensions === 2;
  const fail = (why: string) => new DelineateError("DLN_ERR_INFERENCE", `model ${manifest.id} on series ${volume.seriesInstanceUID}: ${why}`, { seriesInstanceUID: volume.seriesInstanceUID });
  // one tile: every fold's logits, averaged (nnU-Net sums folds and divides)
  const predict = async (tile: Float32Array, [tx, ty, tz]: Dims): Promise<Float32Array> => {
    const sum = new Float32Array(channels * tx * ty * tz);
    const shape = twoD ? [1, 1, ty, tx] : [1, 1, tz, ty, tx];
    for (const session of sessions) {
      let result: ort.InferenceSession.OnnxValueMapType;
      try {
        result = await session.run({ [manifest.input.name]: new ort.Tensor("float32", tile, shape) });
      } catch (err) {
        throw fail((err as Error).message);
      }
      const out = result[manifest.output.name];
      const want = [1, channels, ...shape.slice(2)];
      if (!out || out.dims.length !== want.length || out.dims.some((d, i) => d !== want[i])) {
        throw fail(`output "${manifest.output.name}" has shape [${out?.dims.join(", ")}], expected [${want.join(", ")}]`);
      }
      const data = out.data as Float32Array;
      for (let i = 0; i < sum.length; i++) sum[i]! += data[i]! / sessions.length;
    }
    return sum;
  };
  const axes = { x: 0, y: 1, z: 2 } as const;
  const [px, py, pz] = record.paddedDims;
  const logits = await slidingWindow(
    tensor,
    record.paddedDims,
    channels,
    {
      // a 2D model: tiles one slice thick, so every slice is its own pass
      patch: manifest.inference.patchSize ?? (twoD ? [px, py, 1] : [px, py, pz]),
      overlap: manifest.inference.overlap,
      blend: manifest.inference.blend,
      mirrorAxes: manifest.inference.mirrorAxes.map((a) => axes[a]),
    },
    predict,
  );
  return { probs: softmaxCropped(logits, channels, record), record };
}

/** Runs a model on a volume: its probabilities on the model grid, back to the source grid, argmax, post-processing. */
export async function segmentVolume(volume: VolumeGrid, manifest: ModelManifest, sessions: readonly ort.InferenceSession[]): Promise<LabelMap> {
  const { probs, record } = await modelGridProbabilities(volume, manifest, sessions);
  const labels = probabilitiesToLabels(probs, record, manifest.labels.map((l) => l.value));
  postprocess(labels, manifest.postprocessing, manifest.labels.map((l) => l.value), volume.spacing);
  return labels;
}

/** The manifest's post-processing on the source grid: small components dropped, holes filled, then the largest component kept. */
export function postprocess(labels: LabelMap, p: ModelManifest["postprocessing"], values: readonly number[], spacing: readonly number[]): void {
  const applies = (setting: boolean | number[], v: number) => (Array.isArray(setting) ? setting.includes(v) : setting);
  const minVoxels = Math.ceil((p.minComponentMl * 1000) / (spacing[0]! * spacing[1]! * spacing[2]!));
  for (const v of values) {
    if (minVoxels > 1) removeSmallComponents(labels, v, minVoxels);
    if (applies(p.fillHoles, v)) fillHoles(labels, v);
    if (applies(p.keepLargestComponent, v)) keepLargestComponent(labels, v);
  }
}
