import { DelineateError } from "../errors.js";

/**
 * The one home of the DICOM UIDs Delineate names (PS3.6 Annex A, keywords as the standard spells them) and of the
 * UID grammar (PS3.5 §9.1). Code says `SopClass.SegmentationStorage`, never the dotted string.
 */

/** Transfer syntaxes Delineate reads or asks for. */
export const TransferSyntax = {
  ImplicitVRLittleEndian: "1.2.840.10008.1.2",
  ExplicitVRLittleEndian: "1.2.840.10008.1.2.1",
  DeflatedExplicitVRLittleEndian: "1.2.840.10008.1.2.1.99",
  ExplicitVRBigEndian: "1.2.840.10008.1.2.2",
  JPEGBaseline8Bit: "1.2.840.10008.1.2.4.50",
  JPEGExtended12Bit: "1.2.840.10008.1.2.4.51",
  JPEGLossless: "1.2.840.10008.1.2.4.57",
  JPEGLosslessSV1: "1.2.840.10008.1.2.4.70",
  JPEGLSLossless: "1.2.840.10008.1.2.4.80",
  JPEGLSNearLossless: "1.2.840.10008.1.2.4.81",
  JPEG2000Lossless: "1.2.840.10008.1.2.4.90",
  JPEG2000: "1.2.840.10008.1.2.4.91",
  RLELossless: "1.2.840.10008.1.2.5",
} as const;

/** SOP classes Delineate takes as input, writes, or references. */
export const SopClass = {
  CTImageStorage: "1.2.840.10008.5.1.4.1.1.2",
  MRImageStorage: "1.2.840.10008.5.1.4.1.1.4",
  PositronEmissionTomographyImageStorage: "1.2.840.10008.5.1.4.1.1.128",
  SecondaryCaptureImageStorage: "1.2.840.10008.5.1.4.1.1.7",
  MultiFrameTrueColorSecondaryCaptureImageStorage: "1.2.840.10008.5.1.4.1.1.7.4",
  SegmentationStorage: "1.2.840.10008.5.1.4.1.1.66.4",
  /** Supplement 243 (2024) */
  LabelMapSegmentationStorage: "1.2.840.10008.5.1.4.1.1.66.7",
  EnhancedSRStorage: "1.2.840.10008.5.1.4.1.1.88.22",
  ComprehensiveSRStorage: "1.2.840.10008.5.1.4.1.1.88.33",
  RTStructureSetStorage: "1.2.840.10008.5.1.4.1.1.481.3",
  /** retired, but what RT Referenced Study Sequence items name as their class (as every planning system writes it) */
  DetachedStudyManagement: "1.2.840.10008.3.1.2.3.1",
} as const;

/** The longest a UID may be (PS3.5 §9.1). */
export const DICOM_UID_MAX_LENGTH = 64;

/**
 * A UID's grammar (PS3.5 §9.1): numeric components separated by single dots, each component 0 or digits without a
 * leading zero. The length limit is separate (isDicomUid), since a regular expression cannot say both simply.
 */
export const DICOM_UID_PATTERN = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;

/** Whether `value` is a valid DICOM UID: DICOM_UID_PATTERN and at most 64 characters. */
export function isDicomUid(value: unknown): value is string {
  return typeof value === "string" && value.length <= DICOM_UID_MAX_LENGTH && DICOM_UID_PATTERN.test(value);
}

/**
 * `value` when it is a valid DICOM UID, for the places a UID from outside (a request, a PACS's answer, a pushed
 * file) goes into a URL path or a file name: `..` or `1.2/3` there names another resource. Never cleaned: a UID
 * that is not valid is refused, since a cleaned one would name another instance. The value is not echoed (it is
 * not known to be a UID, so it could be anything).
 * @throws DelineateError DLN_ERR_UID_INVALID naming `what` (e.g. "SeriesInstanceUID")
 */
export function requireDicomUid(value: unknown, what: string): string {
  if (!isDicomUid(value))
    throw new DelineateError("DLN_ERR_UID_INVALID", `${what} is not a valid DICOM UID (PS3.5 §9.1)`, { what });
  return value;
}
