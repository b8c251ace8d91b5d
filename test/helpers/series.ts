import type { ParsedDicom } from "../../src/dicom/dataset.js";

export interface SliceSpec {
  position: [number, number, number];
  iop?: number[];
  pixels?: number[];
  instanceNumber?: number;
  extra?: Record<string, unknown>;
}

/** A single-frame CT series built in memory, as parsePart10 would return it (uncompressed, 16-bit). */
export function makeSeries(
  slices: SliceSpec[],
  common: {
    rows?: number;
    cols?: number;
    signed?: boolean;
    bitsStored?: number;
    slope?: number;
    intercept?: number;
  } = {},
): ParsedDicom[] {
  const rows = common.rows ?? 2,
    cols = common.cols ?? 3;
  return slices.map((s, n) => {
    const pixels = s.pixels ?? Array.from({ length: rows * cols }, (_, i) => i + 10 * n);
    const buf = common.signed ? new Int16Array(pixels).buffer : new Uint16Array(pixels).buffer;
    return {
      transferSyntaxUID: "1.2.840.10008.1.2.1",
      mediaStorageSOPClassUID: "1.2.840.10008.5.1.4.1.1.2",
      dataset: {
        SOPClassUID: "1.2.840.10008.5.1.4.1.1.2",
        SOPInstanceUID: `1.2.3.${n + 1}`,
        StudyInstanceUID: "1.2.3",
        SeriesInstanceUID: "1.2.3.100",
        FrameOfReferenceUID: "1.2.3.200",
        InstanceNumber: s.instanceNumber ?? n + 1,
        Rows: rows,
        Columns: cols,
        ImageOrientationPatient: s.iop ?? [1, 0, 0, 0, 1, 0],
        ImagePositionPatient: s.position,
        PixelSpacing: [0.5, 0.75],
        SamplesPerPixel: 1,
        BitsAllocated: 16,
        BitsStored: common.bitsStored ?? 16,
        PixelRepresentation: common.signed ? 1 : 0,
        RescaleSlope: common.slope ?? 1,
        RescaleIntercept: common.intercept ?? 0,
        PixelData: [buf],
        ...s.extra,
      },
    };
  });
}
