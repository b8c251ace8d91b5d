import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  type NaturalDataset,
  type ParsedDicom,
  parsePart10,
  readPart10Lazily,
  str,
  withSopClass,
} from "../dicom/dataset.js";
import { inspectPart10 } from "../dicom/declaredLengths.js";
import { isDicomUid } from "../dicom/uids.js";
import type { StudySource } from "../pacs/source.js";

/** The UIDs that name a pushed instance's folder and file, with their tags. */
const PATH_UIDS = [
  ["StudyInstanceUID", "0020000D"],
  ["SeriesInstanceUID", "0020000E"],
  ["SOPInstanceUID", "00080018"],
] as const;

/**
 * A pushed instance's header, parsed without its pixel data: the whole file's lengths are checked, then only the
 * bytes before the top-level Pixel Data are read (parsing the whole file copied every pixel, twice).
 * @throws DelineateError DLN_ERR_DICOM_PARSE when the file is not readable
 */
function parsePushedHeader(bytes: Uint8Array): ParsedDicom {
  const layout = inspectPart10(bytes);
  if (layout.problem) return parsePart10(bytes); // throws, with the reason
  const px = layout.pixelData;
  return parsePart10(px ? bytes.subarray(0, px.tagOffset) : bytes, { headersOnly: true });
}

/**
 * Instances pushed to Delineate's STOW-RS, kept as Part 10 files under `<dataDir>/pushed/<study>/<sop>.dcm`
 * (written to a temporary name and renamed, so a crash never leaves half a file), and read back as a study
 * source for the job.
 */
export class PushedStudies implements StudySource {
  constructor(private readonly root: string) {}

  /**
   * Keeps one instance. Returns its UIDs, or why it was refused (unreadable, UIDs missing or invalid, another
   * study than the request's path names). Only the header is parsed (the pixels are not copied) and the file is
   * written without blocking, so a 500 MB instance does not stall the event loop.
   */
  async accept(
    bytes: Uint8Array,
    expectedStudy?: string,
  ): Promise<{ study: string; sopClass: string; sop: string } | { error: string }> {
    let parsed: ParsedDicom;
    try {
      parsed = parsePushedHeader(bytes);
    } catch (err) {
      return { error: `not readable DICOM: ${(err as Error).message}` };
    }
    // The UIDs that name the folder and the file are checked as the file has them: dcmjs cleans UI values as it
    // reads them, and a cleaned UID ("1.2/3" read as "1.23") would name, and could overwrite, another instance.
    const uids: Record<string, string> = {};
    for (const [name, tag] of PATH_UIDS) {
      const raw = parsed.rawUIDs?.[tag] ?? "";
      if (!isDicomUid(raw)) return { error: `${name} is missing or not a valid UID` };
      uids[name] = raw;
    }
    const study = uids.StudyInstanceUID!,
      sop = uids.SOPInstanceUID!;
    // the meta header's class stands in for an empty one, as for every instance read
    const sopClass = parsed.rawUIDs?.["00080016"] || str(withSopClass(parsed), "SOPClassUID");
    if (!isDicomUid(sopClass)) return { error: "SOPClassUID is missing or not a valid UID" };
    if (expectedStudy && study !== expectedStudy)
      return { error: `instance of study ${study}, not of ${expectedStudy}` };
    const dir = path.join(this.root, study);
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${sop}.dcm`);
    await writeFile(`${file}.part`, bytes);
    await rename(`${file}.part`, file);
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
