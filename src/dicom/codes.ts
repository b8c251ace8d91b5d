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

/**
 * One table of one coding scheme's concepts, each written `Name: [code value, code meaning]`: every concept a frozen
 * `{ code, scheme, meaning }` (that key order), the table frozen too.
 */
function concepts<const T extends Record<string, readonly [code: string, meaning: string]>>(
  scheme: string,
  rows: T,
): { readonly [K in keyof T]: CodedConcept } {
  const table = Object.fromEntries(
    Object.entries(rows).map(([name, [code, meaning]]) => [name, Object.freeze({ code, scheme, meaning })]),
  );
  return Object.freeze(table) as { readonly [K in keyof T]: CodedConcept };
}

/** DICOM's own codes (PS3.16 Annex D), named by their code meanings. */
export const DCM = concepts(CodingScheme.DCM, {
  // SEG: CID 7162 algorithm family, CID 7203 derivation, CID 7202 purpose of reference, and LABELMAP's background
  ArtificialIntelligence: ["123110", "Artificial Intelligence"],
  Segmentation: ["113076", "Segmentation"],
  SourceImageForImageProcessingOperation: ["121322", "Source image for image processing operation"],
  Background: ["125040", "Background"],
  // SR: TID 1500 / 1411 concept names and the device observer context (TID 1004)
  ImagingMeasurementReport: ["126000", "Imaging Measurement Report"],
  ImagingMeasurements: ["126010", "Imaging Measurements"],
  MeasurementGroup: ["125007", "Measurement Group"],
  TrackingIdentifier: ["112039", "Tracking Identifier"],
  TrackingUniqueIdentifier: ["112040", "Tracking Unique Identifier"],
  Finding: ["121071", "Finding"],
  ReferencedSegment: ["121191", "Referenced Segment"],
  SourceSeriesForSegmentation: ["121232", "Source series for segmentation"],
  LanguageOfContentItemAndDescendants: ["121049", "Language of Content Item and Descendants"],
  ObserverType: ["121005", "Observer Type"],
  Device: ["121007", "Device"],
  DeviceObserverUID: ["121012", "Device Observer UID"],
  DeviceObserverName: ["121013", "Device Observer Name"],
  DeviceObserverManufacturer: ["121014", "Device Observer Manufacturer"],
  DeviceObserverModelName: ["121015", "Device Observer Model Name"],
  DeviceObserverSerialNumber: ["121016", "Device Observer Serial Number"],
  ProcedureReported: ["121058", "Procedure reported"],
});

/** SNOMED CT concepts Delineate writes itself (labels' own codes come from the model manifest). */
export const SCT = concepts(CodingScheme.SCT, {
  /** CID 7150 segmentation property category; LABELMAP's background segment */
  Tissue: ["85756007", "Tissue"],
  Volume: ["118565006", "Volume"],
});

/** UCUM units: measurement units must be UCUM (dciodvfy warns otherwise). */
export const UCUM = concepts(CodingScheme.UCUM, {
  Milliliter: ["mL", "milliliter"],
});

/** LOINC procedures (CID 100 Quantitative Diagnostic Imaging Procedures). */
export const LOINC = concepts(CodingScheme.LOINC, {
  CTUnspecifiedBodyRegion: ["25045-6", "CT unspecified body region"],
  MRIUnspecifiedBodyRegion: ["25056-3", "MRI unspecified body region"],
});

/** Languages (CID 5000): PixelMed expects en-US, not ISO 639's "eng". */
export const RFC5646 = concepts(CodingScheme.RFC5646, {
  EnglishUnitedStates: ["en-US", "English (United States)"],
});
