import { codeItem, DCM, SCT } from "../dicom/codes.js";
import type { NaturalDataset } from "../dicom/dataset.js";
import { SopClass } from "../dicom/uids.js";
import {
  checkedGrid,
  type DerivedObjectInput,
  derivedObjectHeader,
  dicomDateTime,
  ds,
  rgbToDicomLab,
} from "./attributes.js";
import { packBinaryFrames } from "./bitpack.js";

export interface SegmentationInput extends DerivedObjectInput {
  algorithm: { name: string; version: string };
  uids: { seriesInstanceUID: string; sopInstanceUID: string; dimensionOrganizationUID: string };
  disclaimer: string;
  /** BINARY (default: one bit-packed frame per segment and slice) or LABELMAP (one 8-bit frame per slice, pixel = segment number) */
  type?: "BINARY" | "LABELMAP";
}

export interface Segmentation {
  dataset: NaturalDataset;
  /** label value → SegmentNumber written, for objects that reference segments (SR) */
  segmentNumbers: Map<number, number>;
  frameCount: number;
}

/**
 * Builds a DICOM Segmentation on the source grid: one segment per label present, numbered 1..N. BINARY: frames for
 * every source slice inside a segment's extent (empty ones too, so readers can rebuild the grid). LABELMAP: one
 * frame per slice inside the extent of all segments, each pixel its segment number, 0 the background segment.
 * Each frame references its source image. Throws rather than returning anything invalid.
 * @throws DelineateError DLN_ERR_OUTPUT_INVALID when the inputs disagree or nothing was segmented.
 */
export function buildSegmentation(input: SegmentationInput): Segmentation {
  const { volume, labels } = input;
  const [nx, ny, nz] = volume.dims;
  const invalid = checkedGrid(input, "SEG");
  if (volume.slices.some((s) => !s.sopClassUID || !s.sopInstanceUID))
    throw invalid("a source slice has no SOP Class or Instance UID");
  const values = input.segmentLabels.map((l) => l.value);
  if (new Set(values).size !== values.length) throw invalid("duplicate label values");

  const plane = nx * ny;
  const extent = new Map<number, { first: number; last: number }>();
  for (let k = 0; k < nz; k++) {
    const slice = labels.data.subarray(k * plane, (k + 1) * plane);
    const seen = new Set<number>();
    for (let p = 0; p < plane; p++) if (slice[p]) seen.add(slice[p]!);
    for (const v of seen) {
      const e = extent.get(v);
      if (e) e.last = k;
      else extent.set(v, { first: k, last: k });
    }
  }
  const present = input.segmentLabels.filter((l) => extent.has(l.value));
  if (present.length === 0) throw invalid("no label has any voxel");

  const labelmap = input.type === "LABELMAP";
  const segmentNumbers = new Map<number, number>();
  const frames: { slice: number; value: number; segment: number }[] = [];
  for (const [i, label] of present.entries()) segmentNumbers.set(label.value, i + 1);
  if (labelmap) {
    const first = Math.min(...present.map((l) => extent.get(l.value)!.first)),
      last = Math.max(...present.map((l) => extent.get(l.value)!.last));
    for (let k = first; k <= last; k++) frames.push({ slice: k, value: 0, segment: 0 });
  } else {
    for (const label of present) {
      const e = extent.get(label.value)!;
      for (let k = e.first; k <= e.last; k++)
        frames.push({ slice: k, value: label.value, segment: segmentNumbers.get(label.value)! });
    }
  }

  const { date, time } = dicomDateTime(input.now);
  const [row, column] = volume.direction;
  const dataset: NaturalDataset = {
    ...derivedObjectHeader({
      ...input,
      sopClassUID: labelmap ? SopClass.LabelMapSegmentationStorage : SopClass.SegmentationStorage,
      modality: "SEG",
    }),
    ContentLabel: "SEGMENTATION",
    ContentDescription: `${input.algorithm.name} ${input.algorithm.version}`.slice(0, 64),
    ContentCreatorName: "",
    ContentDate: date,
    ContentTime: time,
    ImageType: ["DERIVED", "PRIMARY"],
    ...(input.disclaimer ? { ImageComments: input.disclaimer } : {}),
    FrameOfReferenceUID: volume.frameOfReferenceUID,
    PositionReferenceIndicator: input.source.PositionReferenceIndicator ?? "",
    SamplesPerPixel: 1,
    PhotometricInterpretation: "MONOCHROME2",
    Rows: ny,
    Columns: nx,
    BitsAllocated: labelmap ? 8 : 1,
    BitsStored: labelmap ? 8 : 1,
    HighBit: labelmap ? 7 : 0,
    PixelRepresentation: 0,
    LossyImageCompression: "00",
    SegmentationType: labelmap ? "LABELMAP" : "BINARY",
    SegmentsOverlap: "NO",
    ...(labelmap ? { PixelPaddingValue: 0 } : {}),
    NumberOfFrames: frames.length,
    SegmentSequence: [
      // LABELMAP: pixels outside every segment are segment 0, described as background (as dcmqi and highdicom write it)
      ...(labelmap
        ? [
            {
              SegmentNumber: 0,
              SegmentLabel: "Background",
              SegmentAlgorithmType: "AUTOMATIC",
              SegmentAlgorithmName: input.algorithm.name,
              SegmentedPropertyCategoryCodeSequence: [codeItem(SCT.Tissue)],
              SegmentedPropertyTypeCodeSequence: [codeItem(DCM.Background)],
            },
          ]
        : []),
      ...present.map((label, i) => ({
        SegmentNumber: i + 1,
        SegmentLabel: label.name,
        SegmentAlgorithmType: "AUTOMATIC",
        SegmentAlgorithmName: input.algorithm.name,
        SegmentationAlgorithmIdentificationSequence: [
          {
            AlgorithmFamilyCodeSequence: [codeItem(DCM.ArtificialIntelligence)],
            AlgorithmName: input.algorithm.name,
            AlgorithmVersion: input.algorithm.version,
          },
        ],
        SegmentedPropertyCategoryCodeSequence: [codeItem(label.category)],
        SegmentedPropertyTypeCodeSequence: [
          {
            ...codeItem(label.type),
            ...(label.laterality ? { SegmentedPropertyTypeModifierCodeSequence: [codeItem(label.laterality)] } : {}),
          },
        ],
        RecommendedDisplayCIELabValue: rgbToDicomLab(label.color),
      })),
    ],
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: input.uids.dimensionOrganizationUID }],
    DimensionIndexSequence: [
      ...(labelmap
        ? []
        : [
            {
              DimensionOrganizationUID: input.uids.dimensionOrganizationUID,
              DimensionIndexPointer: 0x0062000b,
              FunctionalGroupPointer: 0x0062000a,
              DimensionDescriptionLabel: "ReferencedSegmentNumber",
            },
          ]),
      {
        DimensionOrganizationUID: input.uids.dimensionOrganizationUID,
        DimensionIndexPointer: 0x00200032,
        FunctionalGroupPointer: 0x00209113,
        DimensionDescriptionLabel: "ImagePositionPatient",
      },
    ],
    SharedFunctionalGroupsSequence: [
      {
        PixelMeasuresSequence: [
          {
            PixelSpacing: [ds(volume.spacing[1]), ds(volume.spacing[0])],
            SliceThickness: ds(volume.spacing[2]),
            SpacingBetweenSlices: ds(volume.spacing[2]),
          },
        ],
        PlaneOrientationSequence: [{ ImageOrientationPatient: [...row, ...column].map(ds) }],
      },
    ],
    PerFrameFunctionalGroupsSequence: frames.map((f) => {
      const src = volume.slices[f.slice]!;
      return {
        FrameContentSequence: [{ DimensionIndexValues: labelmap ? [f.slice + 1] : [f.segment, f.slice + 1] }],
        PlanePositionSequence: [{ ImagePositionPatient: src.position.map(ds) }],
        DerivationImageSequence: [
          {
            DerivationCodeSequence: [codeItem(DCM.Segmentation)],
            SourceImageSequence: [
              {
                ReferencedSOPClassUID: src.sopClassUID,
                ReferencedSOPInstanceUID: src.sopInstanceUID,
                PurposeOfReferenceCodeSequence: [codeItem(DCM.SourceImageForImageProcessingOperation)],
                SpatialLocationsPreserved: "YES",
              },
            ],
          },
        ],
        ...(labelmap ? {} : { SegmentIdentificationSequence: [{ ReferencedSegmentNumber: f.segment }] }),
      };
    }),
    ReferencedSeriesSequence: [
      {
        SeriesInstanceUID: volume.seriesInstanceUID,
        ReferencedInstanceSequence: volume.slices.map((s) => ({
          ReferencedSOPClassUID: s.sopClassUID,
          ReferencedSOPInstanceUID: s.sopInstanceUID,
        })),
      },
    ],
    PixelData: [
      (labelmap
        ? labelmapFrames(labels.data, plane, frames, segmentNumbers)
        : packBinaryFrames(labels.data, plane, frames)
      ).buffer,
    ],
  };
  dataset._vrMap = { ...(dataset._vrMap ?? {}), PixelData: "OB" };
  return { dataset, segmentNumbers, frameCount: frames.length };
}

/** LABELMAP pixel data: frame f is slice `frames[f].slice` with each label value replaced by its segment number (0 elsewhere). */
function labelmapFrames(
  labels: Uint8Array,
  plane: number,
  frames: readonly { slice: number }[],
  segmentNumbers: Map<number, number>,
): Uint8Array {
  const lut = new Uint8Array(256);
  for (const [value, number] of segmentNumbers) lut[value] = number;
  const out = new Uint8Array(plane * frames.length + ((plane * frames.length) % 2));
  frames.forEach(({ slice }, f) => {
    for (let p = 0; p < plane; p++) out[f * plane + p] = lut[labels[slice * plane + p]!]!;
  });
  return out;
}
