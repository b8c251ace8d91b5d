import type { ParsedDicom } from "../dicom/dataset.js";
import type { OrganVolume } from "../notify/outbox.js";
import { type EncodedOutput, type EncodeInput, encodeOutputs } from "../outputs/encodeOutputs.js";
import { labelsOnStack, type VolumeOptions, volumeForModel } from "../volume/seriesToVolume.js";
import { type LabelMap, labelVoxelCounts, type Volume } from "../volume/volume.js";

/** The stages one series passes through in segmentSeries, by the names the job records their seconds under. */
export type SeriesStage = "volume" | "inference" | "encode";

export interface SeriesInput {
  /** the parsed instances of one series: those its rule takes (a localizer, say, already left out) */
  instances: readonly ParsedDicom[];
  /** how the series becomes a volume */
  volume: VolumeOptions;
  /** runs the model on a volume (the node's or the CLI's inference worker) */
  infer: (volume: Volume) => Promise<LabelMap>;
  /** what the outputs stage takes besides the volume, the source, the labels and the date, which come from here */
  outputs: Omit<EncodeInput, "volume" | "source" | "labels" | "now">;
}

export interface SeriesHooks {
  /** runs one stage: the job times it and checks for a cancel first; without it, each stage simply runs */
  stage?: <T>(stage: SeriesStage, run: () => Promise<T> | T) => Promise<T>;
  /** told once the volume is built, before inference: so its warnings are logged (or kept) even if inference fails */
  volumeReady?: (volume: Volume, warnings: readonly string[]) => void;
}

export interface SegmentedSeries {
  /** the encoded outputs, one per kind asked for */
  files: EncodedOutput[];
  /** what was done to the input that a reader of the results should know (tilt corrected, acquisition chosen) */
  warnings: string[];
  /** each of the model's labels found, with its volume in mL on the source grid (the SR's figures; the notifiers') */
  organs: OrganVolume[];
}

/**
 * One series through one model: volume → inference → labels back onto the source images → encoded outputs. The
 * node's segment job and `delineate segment` both run a series through here, so the two cannot drift apart. A tilted
 * stack is corrected for the model, and its labels are carried back through the volume stage's SourceStack record,
 * so SEG frames and RTSTRUCT contours lie on the source images.
 * @throws DelineateError from whichever stage failed (DLN_ERR_VOLUME_*, inference, outputs), or what `hooks.stage`
 * throws (the job's cancel).
 */
export async function segmentSeries(input: SeriesInput, hooks: SeriesHooks = {}): Promise<SegmentedSeries> {
  const stage = hooks.stage ?? (async <T>(_: SeriesStage, run: () => Promise<T> | T) => run());
  const { volume, warnings, source } = await stage("volume", () => volumeForModel(input.instances, input.volume));
  hooks.volumeReady?.(volume, warnings);
  const labels = await stage("inference", () => input.infer(volume));
  // a corrected (tilted) volume's labels are written on the source slices
  const onSource = source?.volume ?? volume;
  const sourceLabels = source ? labelsOnStack(labels, source.volume.dims, source.placement) : labels;
  // counted once: the SR's volumes and the organs told to the notifiers are the same figures
  let voxelCounts: Float64Array | undefined;
  const files = await stage("encode", () => {
    voxelCounts = labelVoxelCounts(sourceLabels);
    return encodeOutputs({
      ...input.outputs,
      volume: onSource,
      labels: sourceLabels,
      source: input.instances[0]!.dataset,
      now: new Date(),
      voxelCounts,
    });
  });
  return { files, warnings, organs: organVolumes(input.outputs.manifest.labels, onSource, voxelCounts!) };
}

/** Voxel count (labelVoxelCounts) × voxel volume per label present, as the SR measures it (buildMeasurementReport). */
function organVolumes(
  modelLabels: readonly { value: number; name: string; type: OrganVolume["code"] }[],
  volume: Volume,
  counts: Float64Array,
): OrganVolume[] {
  const voxelMl = (volume.spacing[0] * volume.spacing[1] * volume.spacing[2]) / 1000;
  return modelLabels
    .filter((l) => (counts[l.value] ?? 0) > 0)
    .map((l) => ({
      label: l.value,
      name: l.name,
      code: l.type,
      volumeMl: Math.round(counts[l.value]! * voxelMl * 100) / 100,
    }));
}
