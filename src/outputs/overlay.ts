import type { NaturalDataset } from "../dicom/dataset.js";
import { SopClass } from "../dicom/uids.js";
import type { ModelLabel } from "../models/manifest.js";
import { type LabelMap, labelVoxelCounts } from "../volume/volume.js";
import { type DerivedObjectInput, derivedObjectHeader, dicomDateTime, outputInvalid } from "./attributes.js";
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyph } from "./font5x7.js";

/** The volume's intensities must be in place: the overlay draws them. */
export interface OverlayInput extends DerivedObjectInput {
  /** burnt in at the bottom of every frame */
  disclaimer: string;
  /** how many key slices (frames), spread over the segmented extent */
  keySlices: number;
}

type Rgb = readonly [number, number, number];

/** Which slices to show: `n` spread evenly over the slices that hold any label. */
export function keySlices(labels: LabelMap, n: number): number[] {
  const [nx, ny, nz] = labels.dims;
  const plane = nx * ny;
  const labelled: number[] = [];
  for (let k = 0; k < nz; k++)
    if (labels.data.subarray(k * plane, (k + 1) * plane).some((v) => v !== 0)) labelled.push(k);
  const picks = Array.from(
    { length: Math.min(n, labelled.length) },
    (_, i) => labelled[Math.floor(((i + 0.5) * labelled.length) / Math.min(n, labelled.length))]!,
  );
  return [...new Set(picks)];
}

class Canvas {
  readonly rgb: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
    frame: Uint8Array,
    offset: number,
  ) {
    this.rgb = frame.subarray(offset, offset + width * height * 3);
  }
  set(x: number, y: number, c: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const p = (y * this.width + x) * 3;
    this.rgb[p] = c[0];
    this.rgb[p + 1] = c[1];
    this.rgb[p + 2] = c[2];
  }
  box(x: number, y: number, w: number, h: number, c: Rgb): void {
    for (let j = y; j < y + h; j++) for (let i = x; i < x + w; i++) this.set(i, j, c);
  }
  text(x: number, y: number, s: string, scale: number, c: Rgb): void {
    [...s].forEach((ch, n) => {
      const rows = glyph(ch);
      for (let r = 0; r < GLYPH_HEIGHT; r++) {
        for (let b = 0; b < GLYPH_WIDTH; b++)
          if ((rows[r]! >> (GLYPH_WIDTH - 1 - b)) & 1)
            this.box(x + (n * (GLYPH_WIDTH + 1) + b) * scale, y + r * scale, scale, scale, c);
      }
    });
  }
}

/**
 * A Multi-frame True Color Secondary Capture for viewers that show neither SEG nor SR: a few key slices, the image
 * in grey (CT at a soft-tissue window, otherwise the slice's 1st–99th percentile), each label's outline in its
 * colour, a legend of the labels shown, and the disclaimer burnt in. Frames reference their source images.
 * @throws DelineateError DLN_ERR_OUTPUT_INVALID when nothing was segmented.
 */
export function buildOverlay(input: OverlayInput): NaturalDataset {
  const { volume, labels } = input;
  const [nx, ny] = volume.dims;
  const plane = nx * ny;
  const slices = keySlices(labels, input.keySlices);
  if (!slices.length) throw outputInvalid("overlay", volume)("no label has any voxel");
  const colour = new Map(input.segmentLabels.map((l) => [l.value, l.color as Rgb]));
  const counts = labelVoxelCounts(labels); // one pass, not one scan of the volume per label
  const present = input.segmentLabels.filter((l) => counts[l.value]! > 0);
  const scale = Math.max(1, Math.round(nx / 256));
  const frames = new Uint8Array(slices.length * plane * 3);
  const isCT = String(input.source.Modality ?? "") === "CT";

  slices.forEach((k, f) => {
    const canvas = new Canvas(nx, ny, frames, f * plane * 3);
    const img = volume.data.subarray(k * plane, (k + 1) * plane);
    drawImageWithOutlines(
      canvas,
      img,
      labels.data.subarray(k * plane, (k + 1) * plane),
      colour,
      displayWindow(img, isCT),
    );
    drawLegend(canvas, present, scale);
    if (input.disclaimer) drawDisclaimer(canvas, input.disclaimer, scale);
  });
  return secondaryCapture(input, slices, frames);
}

/** The grey window [lo, hi]: CT at a soft-tissue window (level 40, width 400), otherwise the 1st–99th percentile. */
function displayWindow(img: Float32Array, isCT: boolean): [number, number] {
  if (isCT) return [-160, 240];
  const sorted = Float32Array.from(img).sort();
  const lo = sorted[Math.floor(0.01 * (sorted.length - 1))]!,
    hi = sorted[Math.floor(0.99 * (sorted.length - 1))]!;
  return [lo, hi <= lo ? lo + 1 : hi];
}

/** The slice in grey through `[lo, hi]`, each label's outline in its colour over it. */
function drawImageWithOutlines(
  canvas: Canvas,
  img: Float32Array,
  lab: Uint8Array,
  colour: ReadonlyMap<number, Rgb>,
  [lo, hi]: readonly [number, number],
): void {
  const { width: nx, height: ny } = canvas;
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const p = j * nx + i;
      const g = Math.max(0, Math.min(255, Math.round(((img[p]! - lo) / (hi - lo)) * 255)));
      const v = lab[p]!;
      const c = v ? colour.get(v) : undefined;
      // a pixel of a label with a 4-neighbour of another value (or the image's edge) is on the outline
      const edge =
        c &&
        (i === 0 ||
          j === 0 ||
          i === nx - 1 ||
          j === ny - 1 ||
          lab[p - 1] !== v ||
          lab[p + 1] !== v ||
          lab[p - nx] !== v ||
          lab[p + nx] !== v);
      canvas.set(i, j, edge ? c : [g, g, g]);
    }
  }
}

/** The legend at the top left: a swatch of each label's colour and its name, white on black. */
function drawLegend(canvas: Canvas, present: readonly ModelLabel[], scale: number): void {
  const line = (GLYPH_HEIGHT + 3) * scale;
  const legendWidth = Math.min(
    canvas.width,
    (Math.max(...present.map((l) => l.name.length)) * (GLYPH_WIDTH + 1) + GLYPH_HEIGHT + 6) * scale,
  );
  canvas.box(0, 0, legendWidth, present.length * line + 2 * scale, [0, 0, 0]);
  present.forEach((l, n) => {
    const y = (2 + n * (GLYPH_HEIGHT + 3)) * scale;
    canvas.box(2 * scale, y, GLYPH_HEIGHT * scale, GLYPH_HEIGHT * scale, l.color as Rgb);
    canvas.text((GLYPH_HEIGHT + 4) * scale, y, l.name, scale, [255, 255, 255]);
  });
}

/** The disclaimer along the bottom, yellow on black, cut to the width. */
function drawDisclaimer(canvas: Canvas, disclaimer: string, scale: number): void {
  const { width: nx, height: ny } = canvas;
  const line = (GLYPH_HEIGHT + 3) * scale;
  const text = disclaimer.slice(0, Math.floor(nx / ((GLYPH_WIDTH + 1) * scale)) - 1);
  canvas.box(0, ny - line, nx, line, [0, 0, 0]);
  canvas.text(scale, ny - line + 2 * scale, text, scale, [255, 255, 0]);
}

/** The Multi-frame True Color Secondary Capture around the drawn frames, each referencing its source image. */
function secondaryCapture(input: OverlayInput, slices: readonly number[], frames: Uint8Array): NaturalDataset {
  const { volume } = input;
  const [nx, ny] = volume.dims;
  const { date, time } = dicomDateTime(input.now);
  const dataset: NaturalDataset = {
    ...derivedObjectHeader({
      ...input,
      sopClassUID: SopClass.MultiFrameTrueColorSecondaryCaptureImageStorage,
      modality: "OT",
    }),
    ConversionType: "WSD",
    Laterality: input.source.Laterality ?? "",
    ContentDate: date,
    ContentTime: time,
    ImageType: ["DERIVED", "SECONDARY"],
    PatientOrientation: "",
    BurnedInAnnotation: "YES",
    ...(input.disclaimer ? { ImageComments: input.disclaimer } : {}),
    ReferencedImageSequence: slices.map((k) => ({
      ReferencedSOPClassUID: volume.slices[k]!.sopClassUID,
      ReferencedSOPInstanceUID: volume.slices[k]!.sopInstanceUID,
    })),
    SamplesPerPixel: 3,
    PhotometricInterpretation: "RGB",
    PlanarConfiguration: 0,
    Rows: ny,
    Columns: nx,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    LossyImageCompression: "00",
    NumberOfFrames: slices.length,
    FrameIncrementPointer: 0x00182001,
    PageNumberVector: slices.map((_, f) => f + 1),
    PixelData: [frames.buffer],
  };
  dataset._vrMap = { ...(dataset._vrMap ?? {}), PixelData: "OB" };
  return dataset;
}
