import type { NaturalDataset } from "../dicom/dataset.js";

/** Where a job reads its study from: the PACS over DICOMweb, or what was pushed to Delineate's own STOW-RS. */
export interface StudySource {
  searchSeries(studyUID: string): Promise<NaturalDataset[]>;
  seriesMetadata(studyUID: string, seriesUID: string): Promise<NaturalDataset[]>;
  /** every instance of the series; `onInstance`, when the source calls it, is told of each as soon as it has come */
  retrieveSeries(
    studyUID: string,
    seriesUID: string,
    onInstance?: (bytes: Uint8Array, index: number) => void,
  ): Promise<Uint8Array[]>;
}

/** Which of the two a job uses. */
export type SourceKind = "pacs" | "pushed";
