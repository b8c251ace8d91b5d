import { codeItem, DCM, SCT } from "../dicom/codes.js";
import { type NaturalDataset, PixelFiller } from "../dicom/dataset.js";
import { SopClass } from "../dicom/uids.js";
import type { ModelLabel } from "../models/manifest.js";
import type { SliceSource, Volume } from "../volume/volume.js";
import {
  checkedGrid,
  type DerivedObjectInput,
  derivedObjectHeader,
  dicomDateTime,
  ds,
  rgbToDicomLab,
  sourceImageReferences,
} from "./attributes.js";
import { packBinaryFrames, packedBytes } from "./bitpack.js";

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

/** One frame of the SEG: the source slice it lies on, and (BINARY) the label value and segment number it shows. */
interface SegmentFrame {
  slice: number;
  value: number;
  segment: number;
}

/** A label's extent: its first and last slice holding any voxel. */
type Extent = { first: number; last: number };

/**
 * Builds a DICOM Segmentation on the source grid: one segment per label present, numbered 1..N. BINARY: frames for
 * every source slice inside a segment's extent (empty ones too, so readers can rebuild the grid). LABELMAP: one
 * frame per slice inside the extent of all segments, each pixel its segment number, 0 the background segment.
 * Each frame references its source image. Throws rather than returning anything invalid.
 * @throws DelineateError DLN_ERR_OUTPUT_INVALID when the inputs disagree or nothing was segmented.
 */
export function buildSegmentation(input: SegmentationInput): Segmentation {
  const { volume, labels } = input;
  const invalid = checkedGrid(input, "SEG");
  if (volume.slices.some((s) => !s.sopClassUID || !s.sopInstanceUID))
    throw invalid("a source slice has no SOP Class or Instance UID");
  const values = input.segmentLabels.map((l) => l.value);
  if (new Set(values).size !== values.length) throw invalid("duplicate label values");

  const extent = labelExtents(labels.data, volume.dims);
  const present = input.segmentLabels.filter((l) => extent.has(l.value));
  if (present.length === 0) throw invalid("no label has any voxel");

  const labelmap = input.type === "LABELMAP";
  const segmentNumbers = new Map<number, number>();
  for (const [i, label] of present.entries()) segmentNumbers.set(label.value, i + 1);
  const frames = labelmap ? labelmapFrameSlices(present, extent) : binaryFrameSlices(present, extent, segmentNumbers);

  const dataset: NaturalDataset = {
    ...segmentationImage(input, labelmap),
    NumberOfFrames: frames.length,
    SegmentSequence: segmentSequence(input.algorithm, present, labelmap),
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: input.uids.dimensionOrganizationUID }],
    DimensionIndexSequence: dimensionIndexSequence(input.uids.dimensionOrganizationUID, labelmap),
    SharedFunctionalGroupsSequence: sharedFunctionalGroups(volume),
    PerFrameFunctionalGroupsSequence: frames.map((f) => perFrameFunctionalGroups(volume.slices[f.slice]!, f, labelmap)),
    ReferencedSeriesSequence: [
      { SeriesInstanceUID: volume.seriesInstanceUID, ReferencedInstanceSequence: sourceImageReferences(volume) },
    ],
    PixelData: segmentationPixelData(labels.data, volume.dims, frames, segmentNumbers, labelmap),
  };
  dataset._vrMap = { ...(dataset._vrMap ?? {}), PixelData: "OB" };
  return { dataset, segmentNumbers, frameCount: frames.length };
}

/** Each label value's extent along the slices, in one pass over the label map (values absent have none). */
function labelExtents(data: Uint8Array, [nx, ny, nz]: readonly [number, number, number]): Map<number, Extent> {
  const plane = nx * ny;
  const first = new Int32Array(256).fill(-1);
  const last = new Int32Array(256);
  const seen = new Uint8Array(256);
  for (let k = 0; k < nz; k++) {
    seen.fill(0);
    const base = k * plane;
    // four voxels at a time where all are background (most of a label map): their word is zero
    const words =
      (data.byteOffset + base) % 4 === 0 ? new Uint32Array(data.buffer, data.byteOffset + base, plane >> 2) : undefined;
    const start = words ? words.length << 2 : 0;
    if (words) {
      for (let w = 0; w < words.length; w++) {
        if (words[w] === 0) continue;
        const p = base + (w << 2);
        seen[data[p]!] = 1;
        seen[data[p + 1]!] = 1;
        seen[data[p + 2]!] = 1;
        seen[data[p + 3]!] = 1;
      }
    }
    for (let p = start; p < plane; p++) seen[data[base + p]!] = 1;
    for (let v = 1; v < 256; v++) {
      if (!seen[v]) continue;
      if (first[v]! < 0) first[v] = k;
      last[v] = k;
    }
  }
  const extent = new Map<number, Extent>();
  for (let v = 1; v < 256; v++) if (first[v]! >= 0) extent.set(v, { first: first[v]!, last: last[v]! });
  return extent;
}

/** BINARY frames: for each segment in turn, every slice of its extent. */
function binaryFrameSlices(
  present: readonly ModelLabel[],
  extent: Map<number, Extent>,
  segmentNumbers: Map<number, number>,
): SegmentFrame[] {
  const frames: SegmentFrame[] = [];
  for (const label of present) {
    const e = extent.get(label.value)!;
    for (let k = e.first; k <= e.last; k++)
      frames.push({ slice: k, value: label.value, segment: segmentNumbers.get(label.value)! });
  }
  return frames;
}

/** LABELMAP frames: every slice from the first to the last that holds any segment. */
function labelmapFrameSlices(present: readonly ModelLabel[], extent: Map<number, Extent>): SegmentFrame[] {
  const first = Math.min(...present.map((l) => extent.get(l.value)!.first)),
    last = Math.max(...present.map((l) => extent.get(l.value)!.last));
  const frames: SegmentFrame[] = [];
  for (let k = first; k <= last; k++) frames.push({ slice: k, value: 0, segment: 0 });
  return frames;
}

/** The header, content and image pixel attributes of the Segmentation (BINARY: 1 bit; LABELMAP: 8 bits). */
function segmentationImage(input: SegmentationInput, labelmap: boolean): NaturalDataset {
  const { volume } = input;
  const [nx, ny] = volume.dims;
  const { date, time } = dicomDateTime(input.now);
  return {
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
  };
}

/** The Segment Sequence: one item per label present, numbered from 1; a LABELMAP's background segment 0 first. */
function segmentSequence(
  algorithm: SegmentationInput["algorithm"],
  present: readonly ModelLabel[],
  labelmap: boolean,
): NaturalDataset[] {
  // LABELMAP: pixels outside every segment are segment 0, described as background (as dcmqi and highdicom write it)
  const background = {
    SegmentNumber: 0,
    SegmentLabel: "Background",
    SegmentAlgorithmType: "AUTOMATIC",
    SegmentAlgorithmName: algorithm.name,
    SegmentedPropertyCategoryCodeSequence: [codeItem(SCT.Tissue)],
    SegmentedPropertyTypeCodeSequence: [codeItem(DCM.Background)],
  };
  return [
    ...(labelmap ? [background] : []),
    ...present.map((label, i) => ({
      SegmentNumber: i + 1,
      SegmentLabel: label.name,
      SegmentAlgorithmType: "AUTOMATIC",
      SegmentAlgorithmName: algorithm.name,
      SegmentationAlgorithmIdentificationSequence: [
        {
          AlgorithmFamilyCodeSequence: [codeItem(DCM.ArtificialIntelligence)],
          AlgorithmName: algorithm.name,
          AlgorithmVersion: algorithm.version,
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
  ];
}

/** The Dimension Index Sequence: (BINARY only) the referenced segment number, then the image position. */
function dimensionIndexSequence(dimensionOrganizationUID: string, labelmap: boolean): NaturalDataset[] {
  const segmentIndex = {
    DimensionOrganizationUID: dimensionOrganizationUID,
    DimensionIndexPointer: 0x0062000b,
    FunctionalGroupPointer: 0x0062000a,
    DimensionDescriptionLabel: "ReferencedSegmentNumber",
  };
  return [
    ...(labelmap ? [] : [segmentIndex]),
    {
      DimensionOrganizationUID: dimensionOrganizationUID,
      DimensionIndexPointer: 0x00200032,
      FunctionalGroupPointer: 0x00209113,
      DimensionDescriptionLabel: "ImagePositionPatient",
    },
  ];
}

/** The Shared Functional Groups: the source grid's pixel measures and plane orientation, the same for every frame. */
function sharedFunctionalGroups(volume: Volume): NaturalDataset[] {
  const [row, column] = volume.direction;
  return [
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
  ];
}

/** One frame's Per-Frame Functional Groups: its dimension index values, position, source image and (BINARY) segment. */
function perFrameFunctionalGroups(src: SliceSource, f: SegmentFrame, labelmap: boolean): NaturalDataset {
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
}

/**
 * The Pixel Data: BINARY frames bit-packed, LABELMAP frames one byte a pixel; packed when the file is written,
 * straight into its buffer (a 100-segment SEG's frames are some 190 MB).
 */
function segmentationPixelData(
  labels: Uint8Array,
  [nx, ny]: readonly [number, number, number],
  frames: readonly SegmentFrame[],
  segmentNumbers: Map<number, number>,
  labelmap: boolean,
): PixelFiller {
  const plane = nx * ny;
  if (labelmap) {
    const bytes = plane * frames.length;
    return new PixelFiller(bytes + (bytes % 2), (target) =>
      labelmapFrames(labels, plane, frames, segmentNumbers, target),
    );
  }
  return new PixelFiller(packedBytes(plane, frames.length), (target) =>
    packBinaryFrames(labels, plane, frames, target),
  );
}

/** LABELMAP pixel data: frame f is slice `frames[f].slice` with each label value replaced by its segment number (0 elsewhere). */
function labelmapFrames(
  labels: Uint8Array,
  plane: number,
  frames: readonly { slice: number }[],
  segmentNumbers: Map<number, number>,
  out: Uint8Array,
): void {
  const lut = new Uint8Array(256);
  for (const [value, number] of segmentNumbers) lut[value] = number;
  frames.forEach(({ slice }, f) => {
    for (let p = 0; p < plane; p++) out[f * plane + p] = lut[labels[slice * plane + p]!]!;
  });
}
