import { codeItem } from "../dicom/codes.js";
import type { NaturalDataset } from "../dicom/dataset.js";
import { SopClass } from "../dicom/uids.js";
import type { ModelLabel } from "../models/manifest.js";
import type { Volume } from "../volume/volume.js";
import {
  checkedGrid,
  type DerivedObjectInput,
  derivedObjectHeader,
  dicomDateTime,
  ds,
  sourceImageReferences,
} from "./attributes.js";
import { traceMask } from "./contours.js";

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
  const rois = input.segmentLabels.map((label) => ({
    label,
    contours: [] as NaturalDataset[],
    values: new Set(label.rtInterpretedType === "EXTERNAL" ? [label.value, ...includes] : [label.value]),
  }));
  const wanted = new Map(input.segmentLabels.map((l) => [l.value, l]));
  for (let k = 0; k < nz; k++) {
    const slice = labels.data.subarray(k * plane, (k + 1) * plane);
    const boxes = labelBoxes(slice, nx, ny, wanted);
    for (const roi of rois) {
      const box = unionBox([...roi.values].map((v) => boxes.get(v)));
      if (box) roi.contours.push(...contourSequence(slice, roi.values, box, volume, k));
    }
  }
  return rois;
}

/** The box holding every given box (absent ones skipped); undefined when none is given. */
function unionBox(
  boxes: readonly ([number, number, number, number] | undefined)[],
): [number, number, number, number] | undefined {
  let out: [number, number, number, number] | undefined;
  for (const b of boxes) {
    if (!b) continue;
    if (!out) out = [...b];
    else out = [Math.min(out[0], b[0]), Math.min(out[1], b[1]), Math.max(out[2], b[2]), Math.max(out[3], b[3])];
  }
  return out;
}

/**
 * The bounding box [i0, j0, i1, j1] of each label (of those in `wanted`) on one slice. A row is read as runs of one
 * value, so a label's box is touched twice per run rather than per pixel (an External covers half a slice).
 */
function labelBoxes(
  slice: Uint8Array,
  nx: number,
  ny: number,
  wanted: ReadonlyMap<number, unknown>,
): Map<number, [number, number, number, number]> {
  const want = new Uint8Array(256);
  for (const v of wanted.keys()) if (v >= 0 && v < 256) want[v] = 1;
  const [i0, j0, i1, j1] = [
    new Int32Array(256).fill(nx),
    new Int32Array(256).fill(ny),
    new Int32Array(256).fill(-1),
    new Int32Array(256).fill(-1),
  ];
  // four pixels at a time where they are all background (most of a slice): their word is zero
  const words =
    slice.byteOffset % 4 === 0 && nx % 4 === 0
      ? new Uint32Array(slice.buffer, slice.byteOffset, (nx * ny) >> 2)
      : undefined;
  for (let j = 0; j < ny; j++) {
    const row = j * nx;
    for (let i = 0; i < nx; ) {
      if (words && (i & 3) === 0 && words[(row + i) >> 2] === 0) {
        i += 4;
        continue;
      }
      const v = slice[row + i]!;
      let end = i + 1;
      while (end < nx && slice[row + end] === v) end++;
      if (v && want[v]) {
        if (i < i0[v]!) i0[v] = i;
        if (end - 1 > i1[v]!) i1[v] = end - 1;
        if (j < j0[v]!) j0[v] = j;
        j1[v] = j;
      }
      i = end;
    }
  }
  const box = new Map<number, [number, number, number, number]>();
  for (let v = 1; v < 256; v++) if (i1[v]! >= 0) box.set(v, [i0[v]!, j0[v]!, i1[v]!, j1[v]!]);
  return box;
}

/** One ROI's CLOSED_PLANAR contours on slice k (one per island of its label values), traced in a box, in patient mm. */
function contourSequence(
  slice: Uint8Array,
  values: ReadonlySet<number>,
  [i0, j0, i1, j1]: readonly [number, number, number, number],
  volume: Volume,
  k: number,
): NaturalDataset[] {
  const nx = volume.dims[0];
  const [row, column] = volume.direction;
  const [sx, sy] = volume.spacing;
  const src = volume.slices[k]!;
  // one pixel of margin so outlines close inside the crop
  const w = i1 - i0 + 3,
    h = j1 - j0 + 3;
  const mask = new Uint8Array(w * h);
  const inRoi = new Uint8Array(256); // a table, not a Set lookup per pixel of the box
  for (const v of values) if (v >= 0 && v < 256) inRoi[v] = 1;
  for (let j = j0; j <= j1; j++)
    for (let i = i0; i <= i1; i++) mask[(j - j0 + 1) * w + (i - i0 + 1)] = inRoi[slice[j * nx + i]!]!;
  return traceMask(mask, w, h).map((ring) => {
    const data: string[] = [];
    for (const [x, y] of ring) {
      // pixel-edge coordinates → patient mm: pixel (i, j) has its centre at x = i + 0.5
      const u = (x - 1 + i0 - 0.5) * sx,
        v = (y - 1 + j0 - 0.5) * sy;
      for (let a = 0; a < 3; a++) data.push(ds(src.position[a]! + u * row[a]! + v * column[a]!));
    }
    return {
      ContourImageSequence: [{ ReferencedSOPClassUID: src.sopClassUID, ReferencedSOPInstanceUID: src.sopInstanceUID }],
      ContourGeometricType: "CLOSED_PLANAR",
      NumberOfContourPoints: ring.length,
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
