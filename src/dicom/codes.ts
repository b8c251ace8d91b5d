/**
 * The one home of the coded concepts Delineate writes (PS3.16: DCM, SNOMED CT, UCUM, LOINC) and of the one helper that
 * turns a concept into a code sequence item. Builders say `codeItem(DCM.MeasurementGroup)`, never the triple.
 */

/** A coded concept: code value, coding scheme designator, code meaning. Model manifests write labels' codes this way. */
export interface CodedConcept {
  readonly code: string;
  readonly scheme: string;
  readonly meaning: string;
}

/** An item of a code sequence (the Basic Code Sequence Macro, PS3.3 Table 8.8-1a). */
export interface CodeSequenceItem {
  CodeValue: string;
  CodingSchemeDesignator: string;
  CodeMeaning: string;
}

/** The coding scheme designators Delineate writes (PS3.16 Table 8-1). */
export const CodingScheme = {
  DCM: "DCM",
  SCT: "SCT",
  UCUM: "UCUM",
  LOINC: "LN",
  RFC5646: "RFC5646",
} as const;

/** A code sequence item for `concept`: a new object each time, so no two datasets share one. */
export function codeItem(concept: CodedConcept): CodeSequenceItem {
  // this key order is the order the items have always been written in; keep it
  return { CodeValue: concept.code, CodingSchemeDesignator: concept.scheme, CodeMeaning: concept.meaning };
}

const concept = (code: string, scheme: string, meaning: string): CodedConcept =>
  Object.freeze({ code, scheme, meaning });

/** DICOM's own codes (PS3.16 Annex D), named by their code meanings. */
export const DCM = {
  // SEG: CID 7162 algorithm family, CID 7203 derivation, CID 7202 purpose of reference, and LABELMAP's background
  ArtificialIntelligence: concept("123110", CodingScheme.DCM, "Artificial Intelligence"),
  Segmentation: concept("113076", CodingScheme.DCM, "Segmentation"),
  SourceImageForImageProcessingOperation: concept(
    "121322",
    CodingScheme.DCM,
    "Source image for image processing operation",
  ),
  Background: concept("125040", CodingScheme.DCM, "Background"),
  // SR: TID 1500 / 1411 concept names and the device observer context (TID 1004)
  ImagingMeasurementReport: concept("126000", CodingScheme.DCM, "Imaging Measurement Report"),
  ImagingMeasurements: concept("126010", CodingScheme.DCM, "Imaging Measurements"),
  MeasurementGroup: concept("125007", CodingScheme.DCM, "Measurement Group"),
  TrackingIdentifier: concept("112039", CodingScheme.DCM, "Tracking Identifier"),
  TrackingUniqueIdentifier: concept("112040", CodingScheme.DCM, "Tracking Unique Identifier"),
  Finding: concept("121071", CodingScheme.DCM, "Finding"),
  ReferencedSegment: concept("121191", CodingScheme.DCM, "Referenced Segment"),
  SourceSeriesForSegmentation: concept("121232", CodingScheme.DCM, "Source series for segmentation"),
  LanguageOfContentItemAndDescendants: concept("121049", CodingScheme.DCM, "Language of Content Item and Descendants"),
  ObserverType: concept("121005", CodingScheme.DCM, "Observer Type"),
  Device: concept("121007", CodingScheme.DCM, "Device"),
  DeviceObserverUID: concept("121012", CodingScheme.DCM, "Device Observer UID"),
  DeviceObserverName: concept("121013", CodingScheme.DCM, "Device Observer Name"),
  DeviceObserverManufacturer: concept("121014", CodingScheme.DCM, "Device Observer Manufacturer"),
  DeviceObserverModelName: concept("121015", CodingScheme.DCM, "Device Observer Model Name"),
  DeviceObserverSerialNumber: concept("121016", CodingScheme.DCM, "Device Observer Serial Number"),
  ProcedureReported: concept("121058", CodingScheme.DCM, "Procedure reported"),
} as const;

/** SNOMED CT concepts Delineate writes itself (labels' own codes come from the model manifest). */
export const SCT = {
  /** CID 7150 segmentation property category; LABELMAP's background segment */
  Tissue: concept("85756007", CodingScheme.SCT, "Tissue"),
  Volume: concept("118565006", CodingScheme.SCT, "Volume"),
} as const;

/** UCUM units: measurement units must be UCUM (dciodvfy warns otherwise). */
export const UCUM = {
  Milliliter: concept("mL", CodingScheme.UCUM, "milliliter"),
} as const;

/** LOINC procedures (CID 100 Quantitative Diagnostic Imaging Procedures). */
export const LOINC = {
  CTUnspecifiedBodyRegion: concept("25045-6", CodingScheme.LOINC, "CT unspecified body region"),
  MRIUnspecifiedBodyRegion: concept("25056-3", CodingScheme.LOINC, "MRI unspecified body region"),
} as const;

/** Languages (CID 5000): PixelMed expects en-US, not ISO 639's "eng". */
export const RFC5646 = {
  EnglishUnitedStates: concept("en-US", CodingScheme.RFC5646, "English (United States)"),
} as const;
