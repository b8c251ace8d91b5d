import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync, existsSync } from "node:fs";
import path from "node:path";
import { parsePart10, str, type NaturalDataset } from "../dicom/dataset.js";
import type { StudySource } from "../pacs/source.js";

const UID = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/;

/**
 * Instances pushed to Delineate's STOW-RS, kept as Part 10 files under `<dataDir>/pushed/<study>/<sop>.dcm`
 * (written to a temporary name and renamed, so a crash never leaves half a file), and read back as a study
 * source for the job.
 */
export class PushedStudies implements StudySource {
  constructor(private readonly root: string) {}

  /**
   * Keeps one instance. Returns its UIDs, or why it was refused (unreadable, UIDs missing or invalid, another
   * study than the request's path names).
   */
  accept(bytes: Uint8Array, expectedStudy?: string): { study: string; sopClass: string; sop: string } | { error: string } {
    let ds: NaturalDataset, mediaClass: string;
    try {
      const parsed = parsePart10(bytes);
      ds = parsed.dataset;
      mediaClass = parsed.mediaStorageSOPClassUID;
    } catch (err) {
      return { error: `not readable DICOM: ${(err as Error).message}` };
    }
    const study = str(ds, "StudyInstanceUID"), series = str(ds, "SeriesInstanceUID"), sop = str(ds, "SOPInstanceUID");
    const sopClass = str(ds, "SOPClassUID") || mediaClass;
    for (const [name, v] of [["StudyInstanceUID", study], ["SeriesInstanceUID", series], ["SOPInstanceUID", sop], ["SOPClassUID", sopClass]] as const) {
      if (!UID.test(v) || v.length > 64) return { error: `${name} is missing or not a valid UID` };
    }
    if (expectedStudy && study !== expectedStudy) return { error: `instance of study ${study}, not of ${expectedStudy}` };
    const dir = path.join(this.root, study);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${sop}.dcm`);
    writeFileSync(`${file}.part`, bytes);
    renameSync(`${file}.part`, file);
    return { study, sopClass, sop };
  }

  private read(studyUID: string): { dataset: NaturalDataset; bytes: Uint8Array }[] {
    const dir = path.join(this.root, studyUID);
    if (!UID.test(studyUID) || !existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith(".dcm"))
      .map((f) => {
        const bytes = new Uint8Array(readFileSync(path.join(dir, f)));
        return { dataset: parsePart10(bytes, { headersOnly: true }).dataset, bytes };
      });
  }

  async searchSeries(studyUID: string): Promise<NaturalDataset[]> {
    const bySeries = new Map<string, NaturalDataset>();
    for (const { dataset } of this.read(studyUID)) {
      const uid = str(dataset, "SeriesInstanceUID");
      if (!bySeries.has(uid)) bySeries.set(uid, { SeriesInstanceUID: uid, Modality: dataset.Modality, SeriesDescription: dataset.SeriesDescription });
    }
    return [...bySeries.values()];
  }

  async seriesMetadata(studyUID: string, seriesUID: string): Promise<NaturalDataset[]> {
    return this.read(studyUID)
      .filter(({ dataset }) => str(dataset, "SeriesInstanceUID") === seriesUID)
      .map(({ dataset }) => {
        const { PixelData: _placeholder, ...rest } = dataset; // metadata, like WADO-RS's, has no pixel data
        return rest as NaturalDataset;
      });
  }

  async retrieveSeries(studyUID: string, seriesUID: string): Promise<Uint8Array[]> {
    return this.read(studyUID)
      .filter(({ dataset }) => str(dataset, "SeriesInstanceUID") === seriesUID)
      .map(({ bytes }) => bytes);
  }
}
