import { codeItem } from "../dicom/codes.js";
import type { NaturalDataset } from "../dicom/dataset.js";
import { SopClass } from "../dicom/uids.js";
import type { ModelLabel } from "../models/manifest.js";
import type { Vec3 } from "../volume/geometry.js";
import type { Volume } from "../volume/volume.js";
import {
  checkedGrid,
  type DerivedObjectInput,
  derivedObjectHeader,
  dicomDateTime,
  ds,
  sourceImageReferences,
} from "./attributes.js";
import { TraceBuffers, traceLabels } from "./contours.js";

export interface StructureSetInput extends DerivedObjectInput {
  algorithm: { name: string; version: string };
  /** "not for clinical use" wording, in StructureSetDescription */
  disclaimer: string;
  /**
   * label values whose voxels the EXTERNAL ROI covers too (the manifest's `rtstruct.externalIncludes`, resolved):
   * the body outline then contains the organs instead of having a hole at each
   */
  externalIncludes?: readonly number[];
}

/**
 * An RT Structure Set: per label present a ROI of CLOSED_PLANAR contours traced on voxel edges (one per island, its
 * holes joined by keyholes), each contour naming its slice, the full
 * frame of reference → study → series → image chain, and the manifest's RT interpreted types and colours.
 * The bounding box of each label on each slice is traced, not the whole slice.
 * @throws DelineateError DLN_ERR_OUTPUT_INVALID when the inputs disagree or nothing was segmented.
 */
export function buildStructureSet(input: StructureSetInput): NaturalDataset {
  const { volume } = input;
  const invalid = checkedGrid(input, "RTSTRUCT");
  const present = roiContours(input).filter((r) => r.contours.length > 0);
  if (!present.length) throw invalid("no label has any voxel");

  const { date, time } = dicomDateTime(input.now);
  const frame = volume.frameOfReferenceUID;
  const description = `${input.algorithm.name} ${input.algorithm.version}`.slice(0, 64);
  return {
    ...derivedObjectHeader({ ...input, sopClassUID: SopClass.RTStructureSetStorage, modality: "RTSTRUCT" }),
    OperatorsName: "",
    FrameOfReferenceUID: frame,
    PositionReferenceIndicator: input.source.PositionReferenceIndicator ?? "",
    StructureSetLabel: input.algorithm.name.slice(0, 16),
    StructureSetName: description,
    ...(input.disclaimer ? { StructureSetDescription: input.disclaimer.slice(0, 1024) } : {}),
    StructureSetDate: date,
    StructureSetTime: time,
    ReferencedFrameOfReferenceSequence: referencedFrameOfReference(volume),
    StructureSetROISequence: present.map((r, n) => ({
      ROINumber: n + 1,
      ReferencedFrameOfReferenceUID: frame,
      ROIName: r.label.name,
      ROIGenerationAlgorithm: "AUTOMATIC",
      ROIGenerationDescription: description,
    })),
    ROIContourSequence: present.map((r, n) => ({
      ReferencedROINumber: n + 1,
      ROIDisplayColor: [...r.label.color],
      ContourSequence: r.contours,
    })),
    RTROIObservationsSequence: present.map((r, n) => ({
      ObservationNumber: n + 1,
      ReferencedROINumber: n + 1,
      RTROIInterpretedType: r.label.rtInterpretedType,
      ROIInterpreter: "",
      RTROIIdentificationCodeSequence: [codeItem(r.label.type)],
    })),
  };
}

/** A ROI's label and its Contour Sequence items, slice by slice. */
interface RoiContours {
  label: ModelLabel;
  contours: NaturalDataset[];
}

/**
 * Each model label's contours, traced slice by slice within the bounding box of its voxels on that slice; an
 * EXTERNAL label's contours cover the `externalIncludes` labels' voxels too.
 */
function roiContours(input: StructureSetInput): RoiContours[] {
  const { volume, labels } = input;
  const [nx, ny, nz] = volume.dims;
  const plane = nx * ny;
  const includes = input.externalIncludes ?? [];
  const rois = input.segmentLabels.map((label) => {
    const values = label.rtInterpretedType === "EXTERNAL" ? [label.value, ...includes] : [label.value];
    // the label values a ROI covers, as a lookup table the tracer reads per pixel
    const member = new Uint8Array(256);
    for (const v of values) if (v >= 0 && v < 256) member[v] = 1;
    return { label, contours: [] as NaturalDataset[], values, member };
  });
  const wanted = new Uint8Array(256);
  for (const l of input.segmentLabels) if (l.value >= 0 && l.value < 256) wanted[l.value] = 1;
  const boxes = new Int32Array(256 * 4);
  const points = new ContourText(volume);
  const buffers = new TraceBuffers();
  for (let k = 0; k < nz; k++) {
    const slice = labels.data.subarray(k * plane, (k + 1) * plane);
    labelBoxes(slice, nx, ny, wanted, boxes);
    points.slice(k);
    for (const roi of rois) {
      const box = unionBox(boxes, roi.values);
      if (box) roi.contours.push(...contourSequence(slice, nx, roi.member, box, points, buffers, volume.slices[k]!));
    }
  }
  return rois;
}

/** The box [i0, j0, i1, j1] holding the boxes of the given label values; undefined when none has a voxel. */
function unionBox(boxes: Int32Array, values: readonly number[]): [number, number, number, number] | undefined {
  let out: [number, number, number, number] | undefined;
  for (const v of values) {
    if (v < 0 || v > 255 || boxes[v * 4 + 1]! < 0) continue;
    const [i0, j0, i1, j1] = [boxes[v * 4]!, boxes[v * 4 + 1]!, boxes[v * 4 + 2]!, boxes[v * 4 + 3]!];
    if (!out) out = [i0, j0, i1, j1];
    else out = [Math.min(out[0], i0), Math.min(out[1], j0), Math.max(out[2], i1), Math.max(out[3], j1)];
  }
  return out;
}

/**
 * The bounding box of each label (of those `wanted` marks) on one slice, into `boxes`: [i0, j0, i1, j1] at 4·label,
 * j0 = −1 where the label has no voxel.
 */
function labelBoxes(slice: Uint8Array, nx: number, ny: number, wanted: Uint8Array, boxes: Int32Array): void {
  for (let v = 0; v < 256; v++) boxes[v * 4 + 1] = -1;
  // only the ends of each run of one value along a row can widen a box; a word of four background pixels outside a
  // run (most of a slice) is skipped whole
  const aligned = slice.byteOffset % 4 === 0 && nx % 4 === 0;
  const words = aligned ? new Uint32Array(slice.buffer, slice.byteOffset, (nx * ny) >> 2) : undefined;
  const step = aligned ? 4 : nx;
  for (let j = 0; j < ny; j++) {
    const row = j * nx;
    let prev = 0;
    for (let from = row, end = row + nx; from < end; from += step) {
      if (words && prev === 0 && words[from >> 2] === 0) continue;
      for (let at = from, stop = from + step; at < stop; at++) {
        const v = slice[at]!;
        if (v === prev) continue;
        if (prev && wanted[prev]) {
          const o = prev * 4;
          if (at - 1 - row > boxes[o + 2]!) boxes[o + 2] = at - 1 - row;
        }
        if (v && wanted[v]) openRun(boxes, v * 4, at - row, j);
        prev = v;
      }
    }
    if (prev && wanted[prev]) {
      const o = prev * 4;
      if (nx - 1 > boxes[o + 2]!) boxes[o + 2] = nx - 1;
    }
  }
}

/** A run of the label whose box is at `o` starts at (i, j): the box's left, top and bottom. */
function openRun(boxes: Int32Array, o: number, i: number, j: number): void {
  if (boxes[o + 1]! < 0) {
    boxes[o] = boxes[o + 2] = i;
    boxes[o + 1] = boxes[o + 3] = j;
  } else {
    if (i < boxes[o]!) boxes[o] = i;
    boxes[o + 3] = j;
  }
}

/**
 * Contour points as DS text, in patient mm: pixel-edge (x, y) on slice k is at
 * position(k) + (x − 0.5)·sx·row + (y − 0.5)·sy·column (pixel (i, j) has its centre at x = i + 0.5). A coordinate whose
 * column (or row) cosine is 0 depends on x (or y) alone, and on the slice's position along it: its text is made once
 * per x (or y) and kept while that position stays (on an axial stack, x and y for the whole volume), so an RTSTRUCT
 * formats a few thousand numbers instead of three per contour point.
 */
class ContourText {
  /** per coordinate: its text by 2x (by 2y), when it depends on x (y) alone; corners are integers, keyholes halves */
  private readonly cache: (string | undefined)[][] = [[], [], []];
  private readonly cachedAt: number[] = [Number.NaN, Number.NaN, Number.NaN];
  private readonly along: ("x" | "y" | "xy")[];
  private position: Vec3 = [0, 0, 0];

  constructor(private readonly volume: Volume) {
    const [row, column] = volume.direction;
    this.along = [0, 1, 2].map((a) => (column[a] === 0 ? "x" : row[a] === 0 ? "y" : "xy"));
  }

  /** Points from now on lie on slice k. */
  slice(k: number): void {
    this.position = this.volume.slices[k]!.position;
    for (let a = 0; a < 3; a++) {
      if (Object.is(this.cachedAt[a], this.position[a])) continue;
      this.cache[a] = [];
      this.cachedAt[a] = this.position[a]!;
    }
  }

  /** The three DS values of point (x, y), appended to `out`. */
  push(out: string[], x: number, y: number): void {
    for (let a = 0; a < 3; a++) {
      const along = this.along[a];
      if (along === "x") out.push((this.cache[a]![x * 2] ??= this.text(a, x, y)));
      else if (along === "y") out.push((this.cache[a]![y * 2] ??= this.text(a, x, y)));
      else out.push(this.text(a, x, y));
    }
  }

  /**
   * Coordinate `a` of (x, y). With a zero cosine the other term adds ±0, which changes neither a non-zero value nor
   * the text of a zero ("0" either way), so the text is the same for every point sharing x (or y) and the position.
   */
  private text(a: number, x: number, y: number): string {
    const { direction, spacing } = this.volume;
    const u = (x - 0.5) * spacing[0],
      v = (y - 0.5) * spacing[1];
    return ds(this.position[a]! + u * direction[0][a]! + v * direction[1][a]!);
  }
}

/** One ROI's CLOSED_PLANAR contours on a slice (one per island of its label values), traced in a box, in patient mm. */
function contourSequence(
  slice: Uint8Array,
  nx: number,
  member: Uint8Array,
  box: readonly [number, number, number, number],
  points: ContourText,
  buffers: TraceBuffers,
  src: Volume["slices"][number],
): NaturalDataset[] {
  return traceLabels(slice, nx, box, member, buffers).map((ring) => {
    const data: string[] = [];
    for (let p = 0; p < ring.length; p += 2) points.push(data, ring[p]!, ring[p + 1]!);
    return {
      ContourImageSequence: [{ ReferencedSOPClassUID: src.sopClassUID, ReferencedSOPInstanceUID: src.sopInstanceUID }],
      ContourGeometricType: "CLOSED_PLANAR",
      NumberOfContourPoints: ring.length / 2,
      ContourData: data,
    };
  });
}

/** The Referenced Frame of Reference Sequence: frame of reference → study → series → every source image. */
function referencedFrameOfReference(volume: Volume): NaturalDataset[] {
  return [
    {
      FrameOfReferenceUID: volume.frameOfReferenceUID,
      RTReferencedStudySequence: [
        {
          ReferencedSOPClassUID: SopClass.DetachedStudyManagement,
          ReferencedSOPInstanceUID: volume.studyInstanceUID,
          RTReferencedSeriesSequence: [
            { SeriesInstanceUID: volume.seriesInstanceUID, ContourImageSequence: sourceImageReferences(volume) },
          ],
        },
      ],
    },
  ];
}
