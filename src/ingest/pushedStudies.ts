import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type NaturalDataset, parsePart10, readPart10Lazily, str, withSopClass } from "../dicom/dataset.js";
import { isDicomUid } from "../dicom/uids.js";
import type { StudySource } from "../pacs/source.js";

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
  accept(
    bytes: Uint8Array,
    expectedStudy?: string,
  ): { study: string; sopClass: string; sop: string } | { error: string } {
    let ds: NaturalDataset;
    try {
      ds = withSopClass(parsePart10(bytes));
    } catch (err) {
      return { error: `not readable DICOM: ${(err as Error).message}` };
    }
    const study = str(ds, "StudyInstanceUID"),
      series = str(ds, "SeriesInstanceUID"),
      sop = str(ds, "SOPInstanceUID");
    const sopClass = str(ds, "SOPClassUID");
    for (const [name, v] of [
      ["StudyInstanceUID", study],
      ["SeriesInstanceUID", series],
      ["SOPInstanceUID", sop],
      ["SOPClassUID", sopClass],
    ] as const) {
      if (!isDicomUid(v)) return { error: `${name} is missing or not a valid UID` };
    }
    if (expectedStudy && study !== expectedStudy)
      return { error: `instance of study ${study}, not of ${expectedStudy}` };
    const dir = path.join(this.root, study);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${sop}.dcm`);
    writeFileSync(`${file}.part`, bytes);
    renameSync(`${file}.part`, file);
    return { study, sopClass, sop };
  }

  /** The study's kept files with their headers, read from each file's first bytes (not its pixels). */
  private read(studyUID: string): { dataset: NaturalDataset; file: string }[] {
    const dir = path.join(this.root, studyUID);
    if (!isDicomUid(studyUID) || !existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith(".dcm"))
      .map((f) => ({ dataset: readPart10Lazily(path.join(dir, f)).dataset, file: path.join(dir, f) }));
  }

  async searchSeries(studyUID: string): Promise<NaturalDataset[]> {
    const bySeries = new Map<string, NaturalDataset>();
    for (const { dataset } of this.read(studyUID)) {
      const uid = str(dataset, "SeriesInstanceUID");
      if (!bySeries.has(uid))
        bySeries.set(uid, {
          SeriesInstanceUID: uid,
          Modality: dataset.Modality,
          SeriesDescription: dataset.SeriesDescription,
        });
    }
    return [...bySeries.values()];
  }

  async seriesMetadata(studyUID: string, seriesUID: string): Promise<NaturalDataset[]> {
    return this.read(studyUID)
      .filter(({ dataset }) => str(dataset, "SeriesInstanceUID") === seriesUID)
      .map(({ dataset }) => {
        // metadata, like WADO-RS's, has no pixel data (a deflated file's header is read whole, pixels and all)
        const { PixelData: _pixels, ...rest } = dataset;
        return rest as NaturalDataset;
      });
  }

  async retrieveSeries(studyUID: string, seriesUID: string): Promise<Uint8Array[]> {
    return this.read(studyUID)
      .filter(({ dataset }) => str(dataset, "SeriesInstanceUID") === seriesUID)
      .map(({ file }) => new Uint8Array(readFileSync(file)));
  }
}
