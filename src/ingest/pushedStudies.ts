import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { type NaturalDataset, type ParsedDicom, parsePart10, str, withSopClass } from "../dicom/dataset.js";
import { inspectPart10 } from "../dicom/declaredLengths.js";
import { isDicomUid, TransferSyntax } from "../dicom/uids.js";
import { DelineateError } from "../errors.js";
import type { StudySource } from "../pacs/source.js";
import { indexEntry, readStudyIndex, writeIndexEntry } from "./pushedIndex.js";

/** The UIDs that name a pushed instance's folder and file, with their tags. */
const PATH_UIDS = [
  ["StudyInstanceUID", "0020000D"],
  ["SeriesInstanceUID", "0020000E"],
  ["SOPInstanceUID", "00080018"],
] as const;

/** The bytes of the files under `dir` (0 when it is not there). */
function bytesUnder(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    n += entry.isDirectory() ? bytesUnder(p) : statSync(p).size;
  }
  return n;
}

/** Bytes a pushed instance's header is first looked for in; a longer header means joining the whole file. */
const HEADER_GUESS = 256 * 1024;

/**
 * A pushed instance's header, parsed without its pixel data, from the pieces the instance arrived in: only the bytes
 * before the top-level Pixel Data are joined and read (joining or parsing a 500 MB instance whole stalled the event
 * loop for a second). A file whose header is longer than HEADER_GUESS, or that is deflated, is joined whole.
 * @throws DelineateError DLN_ERR_DICOM_PARSE when the file is not readable
 */
function parsePushedHeader(pieces: readonly Uint8Array[], size: number): ParsedDicom {
  let prefix = joinFirst(pieces, Math.min(size, HEADER_GUESS));
  let layout = inspectPart10(prefix, size);
  const deflated = layout.transferSyntaxUID === TransferSyntax.DeflatedExplicitVRLittleEndian;
  if (layout.incomplete || (deflated && prefix.length < size)) {
    prefix = joinFirst(pieces, size);
    layout = inspectPart10(prefix);
  }
  if (layout.problem) throw new DelineateError("DLN_ERR_DICOM_PARSE", layout.problem);
  const px = deflated ? undefined : layout.pixelData;
  return parsePart10(px ? prefix.subarray(0, px.tagOffset) : prefix, { headersOnly: true });
}

/** The first `n` bytes of the pieces, joined. */
function joinFirst(pieces: readonly Uint8Array[], n: number): Uint8Array {
  if (pieces.length === 1 || (pieces[0] && pieces[0].byteLength >= n)) return pieces[0]!.subarray(0, n);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of pieces) {
    if (o >= n) break;
    const take = p.subarray(0, n - o);
    out.set(take, o);
    o += take.byteLength;
  }
  return out;
}

/** Whether `file` holds the bytes of `pieces` ("same"), other bytes ("different"), or is not there ("absent"). */
async function sameContent(
  file: string,
  pieces: readonly Uint8Array[],
  size: number,
): Promise<"same" | "different" | "absent"> {
  let kept: Buffer;
  try {
    const info = await stat(file);
    if (info.size !== size) return "different";
    kept = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "absent";
    throw err;
  }
  // compared piece by piece, letting the event loop run between them
  let o = 0;
  for (const p of pieces) {
    if (Buffer.compare(kept.subarray(o, o + p.byteLength), p) !== 0) return "different";
    o += p.byteLength;
    await new Promise((r) => setImmediate(r));
  }
  return "same";
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
  /** PS3.18: out of resources (the pushed store is at stow.maxStoredMiB); all refused so is answered 507 */
  OutOfResources: 0xa700,
} as const;

export type Accepted = {
  study: string;
  series: string;
  sopClass: string;
  sop: string;
  outcome: "stored" | "unchanged" | "replaced";
};
export type Refused = { error: string; reason: number; sop?: string; sopClass?: string };

export class PushedStudies implements StudySource {
  /**
   * @param duplicates an instance whose UID is kept already: identical content is a no-op success whatever this
   * says; other content is refused ("refuse", what a PACS does) or replaces the kept file ("overwrite")
   */
  /** bytes kept under root, counted once at start and kept up to date (what the cap is checked against) */
  private used: number;

  constructor(
    private readonly root: string,
    private readonly duplicates: DuplicatePolicy = "refuse",
    /** the most bytes kept at once; an instance that would go past it is refused (out of resources) */
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {
    this.used = bytesUnder(root);
  }

  /** Bytes kept now. */
  storedBytes(): number {
    return this.used;
  }

  /** Whether `bytes` more would go past the cap (a request's Content-Length is checked with it before reading). */
  wouldOverflow(bytes: number): boolean {
    return this.used + bytes > this.maxBytes;
  }

  /** The kept studies with the time their newest file was written (ms), for retention. */
  studies(): { studyInstanceUID: string; lastWrittenMs: number }[] {
    if (!existsSync(this.root)) return [];
    return readdirSync(this.root)
      .filter(isDicomUid)
      .map((study) => {
        const dir = path.join(this.root, study);
        let last = statSync(dir).mtimeMs;
        for (const f of readdirSync(dir)) last = Math.max(last, statSync(path.join(dir, f)).mtimeMs);
        return { studyInstanceUID: study, lastWrittenMs: last };
      });
  }

  /** Deletes a kept study's files; returns the bytes freed. */
  async remove(studyUID: string): Promise<number> {
    if (!isDicomUid(studyUID)) return 0;
    const dir = path.join(this.root, studyUID);
    const freed = bytesUnder(dir);
    await rm(dir, { recursive: true, force: true });
    this.used = Math.max(0, this.used - freed);
    return freed;
  }

  /**
   * Keeps one instance. Returns its UIDs, or why it was refused (unreadable, UIDs missing or invalid, another
   * study than the request's path names). Only the header is parsed (the pixels are not copied) and the file is
   * written without blocking, so a 500 MB instance does not stall the event loop.
   */
  async accept(instance: Uint8Array | readonly Uint8Array[], expectedStudy?: string): Promise<Accepted | Refused> {
    const pieces = instance instanceof Uint8Array ? [instance] : instance;
    const size = pieces.reduce((n, p) => n + p.byteLength, 0);
    let parsed: ParsedDicom;
    try {
      parsed = parsePushedHeader(pieces, size);
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
      series = uids.SeriesInstanceUID!,
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
    const kept = await sameContent(file, pieces, size);
    if (kept === "same") return { study, series, sopClass, sop, outcome: "unchanged" };
    if (kept === "different" && this.duplicates === "refuse")
      return {
        error: "an instance with this SOP Instance UID and other content is kept already",
        reason: FailureReason.DuplicateInstance,
        sop,
        sopClass,
      };
    const replacing = kept === "different" ? (await stat(file)).size : 0;
    if (this.wouldOverflow(size - replacing))
      return {
        error: `the pushed store is full (${this.maxBytes} bytes, stow.maxStoredMiB)`,
        reason: FailureReason.OutOfResources,
        sop,
        sopClass,
      };
    this.used += size - replacing; // counted before the write, so requests at once cannot both pass the cap
    try {
      await writeFile(`${file}.part`, pieces); // written piece by piece, off the event loop
      await rename(`${file}.part`, file);
      await writeIndexEntry(file, indexEntry({ ...parsed.dataset, StudyInstanceUID: study, SOPClassUID: sopClass }));
    } catch (err) {
      this.used -= size - replacing;
      throw err;
    }
    return { study, series, sopClass, sop, outcome: kept === "different" ? "replaced" : "stored" };
  }

  /** The study's kept instances with their index entries (no DICOM parsed: see pushedIndex.ts). */
  private read(studyUID: string): Promise<{ file: string; entry: NaturalDataset }[]> {
    if (!isDicomUid(studyUID)) return Promise.resolve([]);
    return readStudyIndex(path.join(this.root, studyUID));
  }

  async searchSeries(studyUID: string): Promise<NaturalDataset[]> {
    const bySeries = new Map<string, NaturalDataset>();
    for (const { entry } of await this.read(studyUID)) {
      const uid = str(entry, "SeriesInstanceUID");
      if (!bySeries.has(uid))
        bySeries.set(uid, {
          SeriesInstanceUID: uid,
          Modality: entry.Modality,
          SeriesDescription: entry.SeriesDescription,
        });
    }
    return [...bySeries.values()];
  }

  /** What routing reads of each instance of a series (INDEX_FIELDS), like WADO-RS metadata without the rest. */
  async seriesMetadata(studyUID: string, seriesUID: string): Promise<NaturalDataset[]> {
    return (await this.read(studyUID))
      .filter(({ entry }) => str(entry, "SeriesInstanceUID") === seriesUID)
      .map(({ entry }) => entry);
  }

  async retrieveSeries(studyUID: string, seriesUID: string): Promise<Uint8Array[]> {
    const files = (await this.read(studyUID)).filter(({ entry }) => str(entry, "SeriesInstanceUID") === seriesUID);
    return Promise.all(files.map(async ({ file }) => new Uint8Array(await readFile(file))));
  }
}
