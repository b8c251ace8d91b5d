import type { NaturalDataset } from "../dicom/dataset.js";

/** Where a job reads its study from: the PACS over DICOMweb, or what was pushed to Delineate's own STOW-RS. */
export interface StudySource {
  searchSeries(studyUID: string): Promise<NaturalDataset[]>;
  seriesMetadata(studyUID: string, seriesUID: string): Promise<NaturalDataset[]>;
  retrieveSeries(studyUID: string, seriesUID: string): Promise<Uint8Array[]>;
}

/** Which of the two a job uses. */
export type SourceKind = "pacs" | "pushed";
