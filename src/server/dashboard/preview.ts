import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type NaturalDataset, num, type ParsedDicom, parsePart10, str, withSopClass } from "../../dicom/dataset.js";
import { DelineateError } from "../../errors.js";
import type { Job } from "../../jobs/job.js";
import type { ModelLabel } from "../../models/manifest.js";
import { unpackBinaryFrame } from "../../outputs/bitpack.js";
import { buildOverlay } from "../../outputs/overlay.js";
import type { StudySource } from "../../pacs/source.js";
import { instanceUnsuitable } from "../../route/selectSeries.js";
import { type VolumeOptions, volumeForModel } from "../../volume/seriesToVolume.js";
import type { LabelMap, Volume } from "../../volume/volume.js";
import { segmentOf } from "./jobReader.js";
import { encodePng } from "./png.js";

/** Everything a preview needs, passed in by the node. */
export interface PreviewDeps {
  /** where the job's source images are read from (the PACS, or the pushed store) */
  source: (job: Job) => StudySource;
  /** where the job's results went (a destination's WADO-RS), by destination name */
  destination: (name: string) => Pick<StudySource, "retrieveSeries"> | undefined;
  /** the SOP classes the job's rule takes (as the segment job filters them) */
  sopClassUIDs: (rule: string) => readonly string[] | undefined;
  /** the model's labels, for names and colours; undefined when the model is no longer installed */
  labels: (modelId: string) => readonly ModelLabel[] | undefined;
  volume: VolumeOptions;
  /** rendered previews are kept here (a preview is fetched from the PACS and drawn once per job result) */
  cacheDir: string;
  keySlices: number;
  disclaimer: string;
}

const FALLBACK: [number, number, number] = [255, 64, 64];
const unavailable = (job: Job, why: string) =>
  new DelineateError("DLN_ERR_OUTPUT_INVALID", `no preview for job ${job.id}: ${why}`, {
    studyInstanceUID: job.studyInstanceUID,
  });

/** A sequence attribute as a list (dcmjs gives a single item as an object). */
function items(v: unknown): NaturalDataset[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]) as NaturalDataset[];
}

/**
 * Key slices of a finished segment job's source series with its result's outlines, as one PNG (frames side by side).
 * The outlines come from the SEG the job stored (read back from its destination, so the preview shows what the PACS
 * holds), drawn by the same code as the Secondary Capture overlay (outputs/overlay.ts). Rendered once per job and
 * result and kept under `cacheDir`; concurrent requests share one rendering.
 */
export class Previewer {
  private readonly inFlight = new Map<string, Promise<Buffer>>();

  constructor(private readonly deps: PreviewDeps) {}

  /** @throws DelineateError DLN_ERR_OUTPUT_INVALID when the job has no stored SEG to show; PACS errors as they come. */
  async png(job: Job): Promise<Buffer> {
    const seg = segmentOf(job)?.uids.seg;
    if (job.state !== "done" || !seg) throw unavailable(job, "it is not a finished job with a SEG");
    const file = path.join(this.deps.cacheDir, `${job.id}-${seg.sopInstanceUID}.png`);
    try {
      return readFileSync(file);
    } catch {
      // not rendered yet
    }
    const running = this.inFlight.get(file);
    if (running) return running;
    const work = this.render(job, seg.seriesInstanceUID, seg.sopInstanceUID).then((png) => {
      mkdirSync(this.deps.cacheDir, { recursive: true });
      writeFileSync(`${file}.tmp`, png);
      renameSync(`${file}.tmp`, file);
      return png;
    });
    this.inFlight.set(file, work);
    try {
      return await work;
    } finally {
      this.inFlight.delete(file);
    }
  }

  private async render(job: Job, segSeries: string, segSop: string): Promise<Buffer> {
    const target = segmentOf(job)!;
    const study = job.studyInstanceUID;
    const destination = this.deps.destination(target.destination);
    if (!destination) throw unavailable(job, `destination "${target.destination}" is no longer configured`);
    const segFile = (await destination.retrieveSeries(study, segSeries))
      .map((b) => parsePart10(b))
      .find((p) => str(p.dataset, "SOPInstanceUID") === segSop);
    if (!segFile) throw unavailable(job, `its SEG ${segSop} is not in destination "${target.destination}"`);

    const sopClasses = this.deps.sopClassUIDs(target.rule);
    const instances: ParsedDicom[] = (await this.deps.source(job).retrieveSeries(study, target.seriesInstanceUID))
      .map((b) => parsePart10(b))
      .filter((p) => !instanceUnsuitable(withSopClass(p), sopClasses));
    if (!instances.length) throw unavailable(job, `its source series ${target.seriesInstanceUID} has no images left`);
    const model = volumeForModel(instances, this.deps.volume);
    // the SEG's frames lie on the source slices: a corrected (tilted) series is drawn as stored
    const volume = model.source?.volume ?? model.volume;

    const manifestLabels = this.deps.labels(target.modelId) ?? [];
    const { labels, segmentLabels } = segToLabels(segFile.dataset, volume, manifestLabels);
    const overlay = buildOverlay({
      volume,
      source: instances[0]!.dataset,
      labels,
      segmentLabels,
      uids: { seriesInstanceUID: segSeries, sopInstanceUID: segSop },
      series: { number: 1, description: "preview" },
      equipment: { manufacturer: "Delineate", modelName: "preview", deviceSerialNumber: "-", softwareVersion: "-" },
      now: new Date(),
      disclaimer: this.deps.disclaimer,
      keySlices: this.deps.keySlices,
    });
    return tile(overlay);
  }
}

/**
 * The label map a SEG describes on the source volume's grid (BINARY: one bit-packed frame per segment and slice;
 * LABELMAP: one 8-bit frame per slice, pixel = segment number), frames placed by the source image they reference.
 * Segments get the model's label value and colour when their SegmentLabel names a model label.
 */
export function segToLabels(
  seg: NaturalDataset,
  volume: Volume,
  manifestLabels: readonly ModelLabel[],
): { labels: LabelMap; segmentLabels: ModelLabel[] } {
  const [nx, ny, nz] = volume.dims;
  const plane = nx * ny;
  if (num(seg, "Rows") !== ny || num(seg, "Columns") !== nx)
    throw new DelineateError(
      "DLN_ERR_OUTPUT_INVALID",
      `SEG ${str(seg, "SOPInstanceUID")} is ${num(seg, "Columns")}×${num(seg, "Rows")}, its source ${nx}×${ny}`,
      { seriesInstanceUID: volume.seriesInstanceUID },
    );
  const sliceOf = new Map(volume.slices.map((s, k) => [`${s.sopInstanceUID}/${s.frameNumber ?? 1}`, k]));
  const labelOf = new Map<number, ModelLabel>();
  for (const s of items(seg.SegmentSequence)) {
    const n = num(s, "SegmentNumber") ?? 0;
    if (n === 0) continue; // LABELMAP's background
    const name = str(s, "SegmentLabel");
    const known = manifestLabels.find((l) => l.name === name);
    labelOf.set(n, known ?? ({ value: Math.min(255, n), name: name || `segment ${n}`, color: FALLBACK } as ModelLabel));
  }
  const labelmap = str(seg, "SegmentationType") === "LABELMAP";
  const pixels = new Uint8Array((seg.PixelData as ArrayBuffer[])[0]!);
  const out = new Uint8Array(plane * nz);
  for (const [f, group] of items(seg.PerFrameFunctionalGroupsSequence).entries()) {
    const ref = items(items(group.DerivationImageSequence)[0]?.SourceImageSequence)[0];
    const k = ref && sliceOf.get(`${str(ref, "ReferencedSOPInstanceUID")}/${num(ref, "ReferencedFrameNumber") ?? 1}`);
    if (k === undefined) continue;
    const base = k * plane;
    if (labelmap) {
      const frame = pixels.subarray(f * plane, (f + 1) * plane);
      for (let p = 0; p < plane; p++) if (frame[p]) out[base + p] = labelOf.get(frame[p]!)?.value ?? frame[p]!;
    } else {
      const segment = num(items(group.SegmentIdentificationSequence)[0] ?? {}, "ReferencedSegmentNumber") ?? 0;
      const value = labelOf.get(segment)?.value;
      if (!value) continue;
      const bits = unpackBinaryFrame(pixels, plane, f);
      for (let p = 0; p < plane; p++) if (bits[p]) out[base + p] = value;
    }
  }
  return { labels: { dims: volume.dims, data: out }, segmentLabels: [...labelOf.values()] };
}

/** The overlay's frames side by side, 4 black pixels apart, as one PNG. */
function tile(overlay: NaturalDataset): Buffer {
  const rows = num(overlay, "Rows")!;
  const cols = num(overlay, "Columns")!;
  const n = num(overlay, "NumberOfFrames")!;
  const frames = new Uint8Array((overlay.PixelData as ArrayBuffer[])[0]!);
  const gap = 4;
  const width = n * cols + (n - 1) * gap;
  const rgb = new Uint8Array(width * rows * 3);
  for (let f = 0; f < n; f++)
    for (let y = 0; y < rows; y++) {
      const from = (f * rows * cols + y * cols) * 3;
      rgb.set(frames.subarray(from, from + cols * 3), (y * width + f * (cols + gap)) * 3);
    }
  return encodePng(width, rows, rgb);
}
