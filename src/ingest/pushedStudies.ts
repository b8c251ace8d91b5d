import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
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

/** Whether `file` holds `bytes` ("same"), other bytes ("different"), or is not there ("absent"). */
async function sameContent(file: string, bytes: Uint8Array): Promise<"same" | "different" | "absent"> {
  let kept: Buffer;
  try {
    const info = await stat(file);
    if (info.size !== bytes.byteLength) return "different";
    kept = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "absent";
    throw err;
  }
  return kept.equals(bytes) ? "same" : "different";
}

/**
 * Instances pushed to Delineate's STOW-RS, kept as Part 10 files under `<dataDir>/pushed/<study>/<sop>.dcm`
 * (written to a temporary name and renamed, so a crash never leaves half a file), and read back as a study
 * source for the job.
 */
/** What is done with an instance whose SOP Instance UID is kept already with other content. */
export type DuplicatePolicy = "refuse" | "overwrite";

/** Why an instance was refused, as the STOW-RS answer's Failure Reason (0008,1197) says it. */
export const FailureReason = {
  /** PS3.18 / PS3.7: cannot understand (unreadable, invalid UIDs, another study) */
  CannotUnderstand: 0xc000,
  /** PS3.7 C.4.2.1.4: duplicate SOP instance (a UID kept already, with other content) */
  DuplicateInstance: 0x0111,
} as const;

export type Accepted = { study: string; sopClass: string; sop: string; outcome: "stored" | "unchanged" | "replaced" };
export type Refused = { error: string; reason: number; sop?: string; sopClass?: string };

export class PushedStudies implements StudySource {
  /**
   * @param duplicates an instance whose UID is kept already: identical content is a no-op success whatever this
   * says; other content is refused ("refuse", what a PACS does) or replaces the kept file ("overwrite")
   */
  constructor(
    private readonly root: string,
    private readonly duplicates: DuplicatePolicy = "refuse",
  ) {}

  /**
   * Keeps one instance. Returns its UIDs, or why it was refused (unreadable, UIDs missing or invalid, another
   * study than the request's path names). Only the header is parsed (the pixels are not copied) and the file is
   * written without blocking, so a 500 MB instance does not stall the event loop.
   */
  async accept(bytes: Uint8Array, expectedStudy?: string): Promise<Accepted | Refused> {
    let parsed: ParsedDicom;
    try {
      parsed = parsePushedHeader(bytes);
    } catch (err) {
      return { error: `not readable DICOM: ${(err as Error).message}`, reason: FailureReason.CannotUnderstand };
    }
    // The UIDs that name the folder and the file are checked as the file has them: dcmjs cleans UI values as it
    // reads them, and a cleaned UID ("1.2/3" read as "1.23") would name, and could overwrite, another instance.
    const uids: Record<string, string> = {};
    for (const [name, tag] of PATH_UIDS) {
      const raw = parsed.rawUIDs?.[tag] ?? "";
      if (!isDicomUid(raw))
        return { error: `${name} is missing or not a valid UID`, reason: FailureReason.CannotUnderstand };
      uids[name] = raw;
    }
    const study = uids.StudyInstanceUID!,
      sop = uids.SOPInstanceUID!;
    // the meta header's class stands in for an empty one, as for every instance read
    const sopClass = parsed.rawUIDs?.["00080016"] || str(withSopClass(parsed), "SOPClassUID");
    if (!isDicomUid(sopClass))
      return { error: "SOPClassUID is missing or not a valid UID", reason: FailureReason.CannotUnderstand };
    if (expectedStudy && study !== expectedStudy)
      return {
        error: `instance of study ${study}, not of ${expectedStudy}`,
        reason: FailureReason.CannotUnderstand,
        sop,
        sopClass,
      };
    const dir = path.join(this.root, study);
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${sop}.dcm`);
    const kept = await sameContent(file, bytes);
    if (kept === "same") return { study, sopClass, sop, outcome: "unchanged" };
    if (kept === "different" && this.duplicates === "refuse")
      return {
        error: "an instance with this SOP Instance UID and other content is kept already",
        reason: FailureReason.DuplicateInstance,
        sop,
        sopClass,
      };
    await writeFile(`${file}.part`, bytes);
    await rename(`${file}.part`, file);
    return { study, sopClass, sop, outcome: kept === "different" ? "replaced" : "stored" };
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
