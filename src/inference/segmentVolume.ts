import type ort from "onnxruntime-node";
import { DelineateError } from "../errors.js";
import type { ModelManifest } from "../models/manifest.js";
import type { LabelMap, Volume } from "../volume/volume.js";
import { applyExternal } from "./external.js";
import { segmentVolumeNnunet } from "./nnunet/segmentVolume.js";
import { fillHoles, keepLargestComponent, removeSmallComponents } from "./postprocess.js";
import { axisMapping, invertMapping, isIdentity, orientationCode, permuteAxes } from "./reorient.js";
import { type AxisWeights, axisWeights, padEdge, resampleLinear } from "./resample.js";
import { slidingWindow } from "./slidingWindow.js";
import { headSoftmaxRow, type Network, tilePredictor } from "./tilePredictor.js";

type Dims = [number, number, number];

/** What inference needs of a volume: its grid, axes and values (not its references), so it can cross to a worker. */
export type InferenceVolume = Pick<Volume, "dims" | "spacing" | "direction" | "data" | "seriesInstanceUID">;

/** What preprocessing did, so that postprocessing can undo it. */
export interface PreprocessRecord {
  sourceDims: Dims;
  /** the model grid, before padding */
  modelDims: Dims;
  paddedDims: Dims;
}

/** The model grid of a volume: its size at the model's spacing (2D models: the slices as they are), and padded. */
export function modelGrid(dims: Dims, spacing: readonly number[], manifest: ModelManifest): PreprocessRecord {
  const twoD = manifest.dimensions === 2;
  // a 2D model sees the source's slices as they are: no resampling or padding along z
  const modelDims = dims.map((n, a) =>
    twoD && a === 2 ? n : Math.max(1, Math.round((n * spacing[a]!) / manifest.input.spacing[a]!)),
  ) as Dims;
  const m = manifest.input.sizeMultiple;
  const patch = manifest.inference.patchSize;
  // at least one patch on every axis, and a whole number of the network's size multiple
  const paddedDims = modelDims.map((n, a) =>
    twoD && a === 2 ? n : Math.max(Math.ceil(n / m) * m, patch?.[a] ?? 0),
  ) as Dims;
  return { sourceDims: dims, modelDims, paddedDims };
}

/** Resamples to the model's spacing, normalises intensities and pads to the network's size multiple. */
export function preprocess(
  volume: Omit<InferenceVolume, "direction">,
  manifest: ModelManifest,
): { tensor: Float32Array; record: PreprocessRecord } {
  const record = modelGrid(volume.dims, volume.spacing, manifest);
  const { sourceDims, modelDims, paddedDims } = record;
  const resampled = resampleLinear(volume.data, sourceDims, modelDims);
  const background = normalize(resampled, manifest.normalization);
  let tensor: Float32Array;
  if (manifest.input.padding === "edge") tensor = padEdge(resampled, modelDims, paddedDims);
  else {
    tensor = new Float32Array(paddedDims[0] * paddedDims[1] * paddedDims[2]).fill(background);
    for (let k = 0; k < modelDims[2]; k++)
      for (let j = 0; j < modelDims[1]; j++)
        tensor.set(
          resampled.subarray((k * modelDims[1] + j) * modelDims[0], (k * modelDims[1] + j + 1) * modelDims[0]),
          (k * paddedDims[1] + j) * paddedDims[0],
        );
  }
  return { tensor, record };
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
  let n = 0,
    sum = 0,
    sq = 0;
  for (const v of data) if (inMask(v)) n++, (sum += v), (sq += v * v);
  const mean = n ? sum / n : 0;
  const std = Math.sqrt(Math.max(0, sq / Math.max(1, n) - mean * mean)) || 1;
  for (let i = 0; i < data.length; i++) data[i] = inMask(data[i]!) ? (data[i]! - mean) / std : 0;
  return 0; // per-image normalisations pad with 0 after normalising, as nnU-Net does
}

/**
 * Softmax over channels of one row of the padded grid's logits (channel c, voxel x at `logits[offset + c · stride + x]`),
 * cropped to the unpadded model grid's x, into `probs` ([C, mx]).
 */
function softmaxRow(
  logits: Float32Array,
  offset: number,
  stride: number,
  channels: number,
  mx: number,
  probs: Float32Array,
  e: Float32Array,
): void {
  for (let i = 0; i < mx; i++) {
    const src = offset + i;
    let max = -Infinity;
    for (let c = 0; c < channels; c++) max = Math.max(max, logits[c * stride + src]!);
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += e[c] = Math.exp(logits[c * stride + src]! - max);
    for (let c = 0; c < channels; c++) probs[c * mx + i] = e[c]! / sum;
  }
}

/**
 * Back to the source grid, fed one model row at a time (class probabilities, [C, mx], rows of any one model slice
 * in increasing y): class probabilities interpolated linearly, then argmax, each source row as soon as the four
 * model rows it lies between have come; model rows no longer needed are let go. So neither the model grid's nor
 * the source grid's probabilities are ever held whole (never nearest-neighbour on labels). Channel c is label value
 * `labelValues[c - 1]`; channel 0 is background.
 */
export class SourceLabeller {
  readonly labels: LabelMap;
  private readonly wx: AxisWeights;
  private readonly wy: AxisWeights;
  private readonly wz: AxisWeights;
  /** model rows (index z · my + y) that have come and are still needed */
  private readonly rows: (Float32Array | undefined)[] = [];
  /** model rows let go of, for the next ones to be written into */
  readonly free: Float32Array[] = [];
  /** per model slice: rows come, counted from y = 0 without a gap; and rows let go, from y = 0 */
  private readonly ready: Int32Array;
  private readonly released: Int32Array;
  /** per source slice: rows labelled */
  private readonly done: Int32Array;
  /** per model slice: the source slices that lie against it */
  private readonly users: number[][];
  // the best probability so far at each pixel of the source rows being labelled, and one class's model rows between two model slices
  private readonly best: Float32Array;
  private readonly zRows: Float32Array;
  // one class's model rows interpolated along x, per model row and source column
  private readonly xRows: Float64Array;

  constructor(
    private readonly record: PreprocessRecord,
    private readonly labelValues: readonly number[],
  ) {
    const [sx, sy, sz] = record.sourceDims;
    const [mx, my, mz] = record.modelDims;
    this.wx = axisWeights(mx, sx);
    this.wy = axisWeights(my, sy);
    this.wz = axisWeights(mz, sz);
    this.labels = { dims: [sx, sy, sz], data: new Uint8Array(sx * sy * sz) };
    this.best = new Float32Array(sx * sy);
    this.zRows = new Float32Array(mx * my);
    this.xRows = new Float64Array(my * sx);
    this.ready = new Int32Array(mz);
    this.released = new Int32Array(mz);
    this.done = new Int32Array(sz);
    this.users = Array.from({ length: mz }, () => []);
    for (let k = 0; k < sz; k++) {
      this.users[this.wz.i0[k]!]!.push(k);
      if (this.wz.i1[k] !== this.wz.i0[k]) this.users[this.wz.i1[k]!]!.push(k);
    }
  }

  add(z: number, y: number, probs: Float32Array): void {
    const my = this.record.modelDims[1];
    this.rows[z * my + y] = probs;
    while (this.ready[z]! < my && this.rows[z * my + this.ready[z]!]) this.ready[z]!++;
    const sy = this.record.sourceDims[1];
    const { wy, wz, done } = this;
    for (const k of this.users[z]!) {
      const have = Math.min(this.ready[wz.i0[k]!]!, this.ready[wz.i1[k]!]!);
      let j1 = done[k]!;
      while (j1 < sy && wy.i1[j1]! < have) j1++;
      if (j1 > done[k]!) this.sourceRows(k, done[k]!, j1);
      done[k] = j1;
    }
    for (const m of new Set([z, ...this.users[z]!.flatMap((k) => [wz.i0[k]!, wz.i1[k]!])])) this.release(m);
  }

  /** Lets go of model slice m's rows that no source row still to be labelled lies against. */
  private release(m: number): void {
    const my = this.record.modelDims[1];
    const sy = this.record.sourceDims[1];
    let keepFrom = Math.min(my, this.ready[m]!);
    for (const k of this.users[m]!) if (this.done[k]! < sy) keepFrom = Math.min(keepFrom, this.wy.i0[this.done[k]!]!);
    for (let y = this.released[m]!; y < keepFrom; y++) {
      const p = this.rows[m * my + y];
      if (p) this.free.push(p);
      this.rows[m * my + y] = undefined;
    }
    this.released[m] = Math.max(this.released[m]!, keepFrom);
  }

  /** Labels rows j0 ≤ j < j1 of source slice k: every class's probability interpolated, the best kept. */
  private sourceRows(k: number, j0: number, j1: number): void {
    const [sx] = this.record.sourceDims;
    const [mx, my] = this.record.modelDims;
    const { wx, wy, zRows, xRows } = this;
    const z0 = this.wz.i0[k]!,
      z1 = this.wz.i1[k]!,
      w = this.wz.w1[k]!;
    // the model rows these source rows lie between
    const r0 = wy.i0[j0]!,
      r1 = wy.i1[j1 - 1]!;
    const best = this.best.subarray(0, (j1 - j0) * sx).fill(-1);
    const labels = this.labels.data.subarray(
      (k * this.record.sourceDims[1] + j0) * sx,
      (k * this.record.sourceDims[1] + j1) * sx,
    );
    const channels = this.rows[z0 * my + r0]!.length / mx;
    for (let c = 0; c < channels; c++) {
      for (let r = r0; r <= r1; r++) {
        const p0 = this.rows[z0 * my + r]!,
          p1 = this.rows[z1 * my + r]!,
          at = (r - r0) * mx;
        for (let i = 0; i < mx; i++) zRows[at + i] = p0[c * mx + i]! * (1 - w) + p1[c * mx + i]! * w;
      }
      // along x once per model row: a source row reads two model rows and a model row serves about two source rows.
      // Kept as doubles, so q below is the same number the four-term expression gives
      for (let r = r0; r <= r1; r++)
        for (let i = 0, at = (r - r0) * mx, o = (r - r0) * sx; i < sx; i++) {
          const u = wx.w1[i]!;
          xRows[o + i] = zRows[at + wx.i0[i]!]! * (1 - u) + zRows[at + wx.i1[i]!]! * u;
        }
      const value = c === 0 ? 0 : this.labelValues[c - 1]!;
      for (let j = j0; j < j1; j++) {
        const a0 = (wy.i0[j]! - r0) * sx,
          a1 = (wy.i1[j]! - r0) * sx,
          v = wy.w1[j]!;
        for (let i = 0, o = (j - j0) * sx; i < sx; i++, o++) {
          const q = xRows[a0 + i]! * (1 - v) + xRows[a1 + i]! * v;
          if (q > best[o]!) {
            best[o] = q;
            labels[o] = value;
          }
        }
      }
    }
  }
}

/** Tiles per network call: the manifest's, else 8 slices for a 2D model and 1 tile for a 3D one, within what every fold's input accepts. */
function batchSize(manifest: ModelManifest, sessions: readonly ort.InferenceSession[]): number {
  let n = manifest.inference.batchSize ?? (manifest.dimensions === 2 ? 8 : 1);
  for (const s of sessions) {
    const meta = s.inputMetadata.find((m) => m.name === manifest.input.name);
    const fixed = meta?.isTensor ? meta.shape[0] : undefined;
    if (typeof fixed === "number" && fixed > 0) n = Math.min(n, fixed);
  }
  return n;
}

/**
 * The network's class probabilities on the model grid, one model row at a time (all classes, [C, mx]; any one
 * slice's rows in increasing y): preprocess, the network over the volume (one pass, or tiles with blending; 2D
 * models slice by slice), for each fold and mirroring, logits averaged, softmax. Networks whose last 1×1×1
 * convolution was split off (createSession's `headSplit`) are blended as features and that convolution applied per
 * finished row (tilePredictor.ts). Rows are taken from `free` (arrays the consumer is done with) when it has one.
 * Memory beyond the volume: the rows of tiles' logits (or features) not final yet.
 */
export async function modelGridRows(
  volume: Omit<InferenceVolume, "direction">,
  manifest: ModelManifest,
  sessions: readonly Network[],
  onRow: (z: number, y: number, probs: Float32Array) => void,
  free: Float32Array[] = [],
): Promise<PreprocessRecord> {
  const { tensor, record } = preprocess(volume, manifest);
  const channels = manifest.labels.length + 1;
  const twoD = manifest.dimensions === 2;
  const fail = (why: string, cause?: unknown) =>
    new DelineateError(
      "DLN_ERR_INFERENCE",
      `model ${manifest.id} on series ${volume.seriesInstanceUID}: ${why}`,
      { seriesInstanceUID: volume.seriesInstanceUID, model: manifest.id },
      cause === undefined ? undefined : { cause },
    );
  // tiles: every fold's logits averaged, or with heads split off, the folds' features side by side
  const network = tilePredictor(
    sessions,
    { input: manifest.input.name, output: manifest.output.name, classes: channels, twoD },
    fail,
  );
  const axes = { x: 0, y: 1, z: 2 } as const;
  const [px, py, pz] = record.paddedDims;
  const [mx, my, mz] = record.modelDims;
  const e = new Float32Array(channels);
  // a 2D model: tiles one slice thick, so every slice is its own pass
  const patch = (manifest.inference.patchSize ?? (twoD ? [px, py, 1] : [px, py, pz])).map((p, a) => {
    const size = record.paddedDims[a]!;
    return size > p && size <= p * (1 + manifest.inference.stretch) ? size : p;
  }) as Dims;
  const { head } = network;
  await slidingWindow(
    tensor,
    record.paddedDims,
    network.channels,
    {
      patch,
      overlap: manifest.inference.overlap,
      blend: manifest.inference.blend,
      mirrorAxes: manifest.inference.mirrorAxes.map((a) => axes[a]),
      batch: batchSize(manifest, network.sessions),
      accumulator: manifest.inference.accumulator,
    },
    network.predict,
    (z, y, logits, offset, stride) => {
      if (z >= mz || y >= my) return; // padding
      // a row the consumer has let go of, if any: waiting for the collector to find thousands of them raised the peak
      const probs = free.pop() ?? new Float32Array(channels * mx);
      if (head) headSoftmaxRow(head, logits, offset, stride, mx, probs, e);
      else softmaxRow(logits, offset, stride, channels, mx, probs, e);
      onRow(z, y, probs);
    },
  );
  return record;
}

/** The model grid's class probabilities whole (one array per class): what the parity test and benchmark compare with PyTorch. */
export async function modelGridProbabilities(
  volume: Omit<InferenceVolume, "direction">,
  manifest: ModelManifest,
  sessions: readonly Network[],
): Promise<{ probs: Float32Array[]; record: PreprocessRecord }> {
  const [mx, my, mz] = modelGrid(volume.dims, volume.spacing, manifest).modelDims;
  const plane = mx * my;
  const probs = Array.from({ length: manifest.labels.length + 1 }, () => new Float32Array(plane * mz));
  const free: Float32Array[] = [];
  const record = await modelGridRows(
    volume,
    manifest,
    sessions,
    (z, y, p) => {
      for (let c = 0; c < probs.length; c++) probs[c]!.set(p.subarray(c * mx, (c + 1) * mx), z * plane + y * mx);
      free.push(p);
    },
    free,
  );
  return { probs, record };
}

/**
 * Runs a model on a volume: the network's labels (networkLabels), then post-processing. A model whose only label
 * is an External that the classical outline replaces skips the network: it would change no voxel.
 */
export async function segmentVolume(
  volume: InferenceVolume,
  manifest: ModelManifest,
  sessions: readonly Network[],
): Promise<LabelMap> {
  const labels = externalOnly(manifest)
    ? { dims: [...volume.dims] as Dims, data: new Uint8Array(volume.data.length) }
    : await networkLabels(volume, manifest, sessions);
  const values = manifest.labels.map((l) => l.value);
  postprocess(labels, manifest.postprocessing, values, volume.spacing, volume.data);
  return labels;
}

/**
 * The network's labels on the source grid, before post-processing: reoriented to the model's axes when its manifest
 * names them, class probabilities on the model grid streamed back to the source grid, argmax, axes restored.
 */
export async function networkLabels(
  volume: InferenceVolume,
  manifest: ModelManifest,
  sessions: readonly Network[],
): Promise<LabelMap> {
  if (manifest.preprocessing === "nnunet") {
    // nnU-Net's path blends whole logits its own way (src/inference/nnunet): its sessions are never split
    const whole = sessions.map((s) => {
      if (!("session" in s)) return s;
      if (s.split)
        throw new DelineateError(
          "DLN_ERR_INFERENCE",
          `model ${manifest.id}: the nnU-Net path runs networks whole; create its sessions without headSplit`,
          { model: manifest.id },
        );
      return s.session;
    });
    return segmentVolumeNnunet(volume, manifest, whole);
  }
  const target = manifest.input.orientation;
  const mapping = target ? axisMapping(orientationCode(volume.direction), target) : undefined;
  const reoriented = mapping && !isIdentity(mapping);
  const input: InferenceVolume = reoriented
    ? {
        ...volume,
        ...permuteAxes(volume.data, volume.dims, mapping),
        spacing: mapping.perm.map((a) => volume.spacing[a]!) as Dims,
      }
    : volume;
  const labeller = new SourceLabeller(
    modelGrid(input.dims, input.spacing, manifest),
    manifest.labels.map((l) => l.value),
  );
  await modelGridRows(input, manifest, sessions, (z, y, p) => labeller.add(z, y, p), labeller.free);
  const labels = labeller.labels;
  return reoriented ? permuteAxes(labels.data, labels.dims, invertMapping(mapping)) : labels;
}

/** True when the model's only label is an External that the classical outline replaces (`combine: "replace"`). */
export function externalOnly(manifest: ModelManifest): boolean {
  const external = manifest.postprocessing.external;
  return external?.combine === "replace" && manifest.labels.every((l) => l.value === external.label);
}

/**
 * The manifest's post-processing on the source grid: small components dropped, holes filled, then the largest
 * component kept; last, the External label from the CT's HU (`hu`, on the same grid), which supersedes the others
 * for that label.
 */
export function postprocess(
  labels: LabelMap,
  p: ModelManifest["postprocessing"],
  values: readonly number[],
  spacing: readonly number[],
  hu?: Float32Array,
): void {
  const applies = (setting: boolean | number[], v: number) => (Array.isArray(setting) ? setting.includes(v) : setting);
  const minVoxels = Math.ceil((p.minComponentMl * 1000) / (spacing[0]! * spacing[1]! * spacing[2]!));
  for (const v of values) {
    if (v === p.external?.label) continue;
    if (minVoxels > 1) removeSmallComponents(labels, v, minVoxels);
    if (applies(p.fillHoles, v)) fillHoles(labels, v);
    if (applies(p.keepLargestComponent, v)) keepLargestComponent(labels, v);
  }
  if (!p.external) return;
  if (hu?.length !== labels.data.length)
    throw new DelineateError("DLN_ERR_INFERENCE", "the External step needs the CT's HU on the label map's grid", {
      step: "postprocessing.external",
    });
  applyExternal(labels, hu, spacing, p.external);
}
