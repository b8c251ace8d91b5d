import { codeItem } from "../dicom/codes.js";
import type { NaturalDataset } from "../dicom/dataset.js";
import { SopClass } from "../dicom/uids.js";
import type { ModelLabel } from "../models/manifest.js";
import { checkedGrid, type DerivedObjectInput, derivedObjectHeader, dicomDateTime, ds } from "./attributes.js";
import { traceMask } from "./contours.js";

export interface StructureSetInput extends DerivedObjectInput {
  algorithm: { name: string; version: string };
  /** "not for clinical use" wording, in StructureSetDescription */
  disclaimer: string;
}

/**
 * An RT Structure Set: per label present a ROI of CLOSED_PLANAR contours traced on voxel edges (one per island, its
 * holes joined by keyholes), each contour naming its slice, the full
 * frame of reference → study → series → image chain, and the manifest's RT interpreted types and colours.
 * The bounding box of each label on each slice is traced, not the whole slice.
 * @throws DelineateError DLN_ERR_OUTPUT_INVALID when the inputs disagree or nothing was segmented.
 */
export function buildStructureSet(input: StructureSetInput): NaturalDataset {
  const { volume, labels } = input;
  const [nx, ny, nz] = volume.dims;
  const invalid = checkedGrid(input, "RTSTRUCT");

  const [row, column] = volume.direction;
  const [sx, sy] = volume.spacing;
  const plane = nx * ny;
  const rois: { label: ModelLabel; contours: NaturalDataset[] }[] = input.segmentLabels.map((label) => ({
    label,
    contours: [],
  }));
  const byValue = new Map(rois.map((r) => [r.label.value, r]));
  for (let k = 0; k < nz; k++) {
    const slice = labels.data.subarray(k * plane, (k + 1) * plane);
    // bounding box of each label on this slice
    const box = new Map<number, [number, number, number, number]>();
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const v = slice[j * nx + i]!;
        if (!v || !byValue.has(v)) continue;
        const b = box.get(v);
        if (!b) box.set(v, [i, j, i, j]);
        else {
          if (i < b[0]) b[0] = i;
          if (i > b[2]) b[2] = i;
          if (j > b[3]) b[3] = j;
        }
      }
    }
    const src = volume.slices[k]!;
    for (const [value, [i0, j0, i1, j1]] of box) {
      // one pixel of margin so outlines close inside the crop
      const w = i1 - i0 + 3,
        h = j1 - j0 + 3;
      const mask = new Uint8Array(w * h);
      for (let j = j0; j <= j1; j++)
        for (let i = i0; i <= i1; i++) if (slice[j * nx + i] === value) mask[(j - j0 + 1) * w + (i - i0 + 1)] = 1;
      for (const ring of traceMask(mask, w, h)) {
        const data: string[] = [];
        for (const [x, y] of ring) {
          // pixel-edge coordinates → patient mm: pixel (i, j) has its centre at x = i + 0.5
          const u = (x - 1 + i0 - 0.5) * sx,
            v = (y - 1 + j0 - 0.5) * sy;
          for (let a = 0; a < 3; a++) data.push(ds(src.position[a]! + u * row[a]! + v * column[a]!));
        }
        byValue.get(value)!.contours.push({
          ContourImageSequence: [
            { ReferencedSOPClassUID: src.sopClassUID, ReferencedSOPInstanceUID: src.sopInstanceUID },
          ],
          ContourGeometricType: "CLOSED_PLANAR",
          NumberOfContourPoints: ring.length,
          ContourData: data,
        });
      }
    }
  }
  const present = rois.filter((r) => r.contours.length > 0);
  if (!present.length) throw invalid("no label has any voxel");

  const { date, time } = dicomDateTime(input.now);
  const frame = volume.frameOfReferenceUID;
  return {
    ...derivedObjectHeader({ ...input, sopClassUID: SopClass.RTStructureSetStorage, modality: "RTSTRUCT" }),
    OperatorsName: "",
    FrameOfReferenceUID: frame,
    PositionReferenceIndicator: input.source.PositionReferenceIndicator ?? "",
    StructureSetLabel: input.algorithm.name.slice(0, 16),
    StructureSetName: `${input.algorithm.name} ${input.algorithm.version}`.slice(0, 64),
    ...(input.disclaimer ? { StructureSetDescription: input.disclaimer.slice(0, 1024) } : {}),
    StructureSetDate: date,
    StructureSetTime: time,
    ReferencedFrameOfReferenceSequence: [
      {
        FrameOfReferenceUID: frame,
        RTReferencedStudySequence: [
          {
            ReferencedSOPClassUID: SopClass.DetachedStudyManagement,
            ReferencedSOPInstanceUID: volume.studyInstanceUID,
            RTReferencedSeriesSequence: [
              {
                SeriesInstanceUID: volume.seriesInstanceUID,
                ContourImageSequence: volume.slices.map((s) => ({
                  ReferencedSOPClassUID: s.sopClassUID,
                  ReferencedSOPInstanceUID: s.sopInstanceUID,
                })),
              },
            ],
          },
        ],
      },
    ],
    StructureSetROISequence: present.map((r, n) => ({
      ROINumber: n + 1,
      ReferencedFrameOfReferenceUID: frame,
      ROIName: r.label.name,
      ROIGenerationAlgorithm: "AUTOMATIC",
      ROIGenerationDescription: `${input.algorithm.name} ${input.algorithm.version}`.slice(0, 64),
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
