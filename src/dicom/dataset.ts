import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";
import type { NaturalDataset } from "dcmjs";
import { DelineateError } from "../errors.js";
import { readAt } from "../fileRange.js";
import { dcmjs } from "./dcmjsLibrary.js";
import { checkDeclaredLengths, inspectPart10 } from "./declaredLengths.js";
import { readPart10Natural } from "./part10Reader.js";
import { SequenceWriter, splitTrailingNaturalSequences } from "./sequenceWriter.js";
import { TransferSyntax } from "./uids.js";

export type { NaturalDataset };

/** A Part 10 file read into dcmjs's naturalised form, with the transfer syntax and the meta SOP class. */
export interface ParsedDicom {
  dataset: NaturalDataset;
  transferSyntaxUID: string;
  /** MediaStorageSOPClassUID, which some files carry when their SOPClassUID is empty. */
  mediaStorageSOPClassUID: string;
  /**
   * Top-level UI values as the file holds them, by tag ("0020000D"): dcmjs drops every character a UID cannot hold
   * when it reads one ("1.2/3" becomes "1.23"), and our reader copies it, so a UID is checked here, never in `dataset`.
   */
  rawUIDs?: Record<string, string>;
  /**
   * the Pixel Data value, read from the file when asked for: set when the dataset was read without it. Native pixels
   * read from a file go into `scratch`'s buffer (made or remade at their length), which a caller decoding slice after
   * slice passes again: one buffer for a series instead of a fresh one per slice, each faulted in page by page.
   */
  readPixelData?: (scratch?: ScratchBuffer) => unknown;
}

/** A buffer a pixel reader may reuse from one call to the next: what it returned last is overwritten. */
export interface ScratchBuffer {
  buffer?: ArrayBuffer;
}

/** An instance's Pixel Data value as dcmjs gives it, read from its file first if it was left there. */
export function pixelDataOf(p: ParsedDicom, scratch?: ScratchBuffer): unknown {
  return p.dataset.PixelData ?? p.readPixelData?.(scratch);
}

/**
 * @throws DelineateError DLN_ERR_DICOM_PARSE when the bytes are not a readable Part 10 file, or declare an element
 * longer than the file (callers add which file or instance).
 */
export function parsePart10(bytes: Uint8Array, options: { headersOnly?: boolean } = {}): ParsedDicom {
  const problem = checkDeclaredLengths(bytes);
  if (problem) throw new DelineateError("DLN_ERR_DICOM_PARSE", problem);
  // headersOnly stops before PixelData: what routing and grouping need, without copying the pixels
  return naturalise(bytes, options.headersOnly ? { untilTag: "7FE00010" } : {});
}

/**
 * parsePart10 for a file received whole (WADO-RS): dcmjs reads the header only, and native Pixel Data stays in
 * `bytes`, copied out when a slice is decoded; dcmjs would otherwise copy the file, then the pixels again, for a
 * 512×512×300 series 300 MB of copies before the volume is built. Deflated and encapsulated files are parsed whole.
 * @throws DelineateError DLN_ERR_DICOM_PARSE as parsePart10.
 */
export function parsePart10Received(bytes: Uint8Array): ParsedDicom {
  const layout = inspectPart10(bytes);
  if (layout.problem) throw new DelineateError("DLN_ERR_DICOM_PARSE", layout.problem);
  const px = layout.pixelData;
  const nativePixels =
    px?.length !== undefined &&
    layout.transferSyntaxUID !== TransferSyntax.DeflatedExplicitVRLittleEndian &&
    NATIVE_SYNTAXES.has(layout.transferSyntaxUID ?? "");
  if (!px || px.length === undefined || !nativePixels) return naturalise(bytes, {});
  const { valueOffset, length } = px;
  const parsed = naturalise(bytes.subarray(0, px.tagOffset), {});
  if (layout.transferSyntaxUID !== TransferSyntax.ImplicitVRLittleEndian) {
    // the VR dcmjs would have kept for the Pixel Data it read (explicit VR: written beside the tag)
    const vr = String.fromCharCode(bytes[px.tagOffset + 4]!, bytes[px.tagOffset + 5]!);
    parsed.dataset._vrMap = { ...(parsed.dataset._vrMap ?? {}), PixelData: vr };
  }
  return { ...parsed, readPixelData: () => [bytes.slice(valueOffset, valueOffset + length).buffer] };
}

const NATIVE_SYNTAXES = new Set<string>([
  TransferSyntax.ImplicitVRLittleEndian,
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ExplicitVRBigEndian,
]);

function naturalise(bytes: Uint8Array, options: { untilTag?: string }): ParsedDicom {
  // our reader for the common syntaxes (a tenth of dcmjs's time); dcmjs for the rest, and for every error
  return (options.untilTag === undefined ? readPart10Natural(bytes) : undefined) ?? naturaliseWithDcmjs(bytes, options);
}

/**
 * A Part 10 file read by dcmjs alone (what naturalise falls back to; the reference its own reader is tested against).
 * @throws DelineateError DLN_ERR_DICOM_PARSE when dcmjs cannot read the bytes.
 */
export function naturaliseWithDcmjs(bytes: Uint8Array, options: { untilTag?: string } = {}): ParsedDicom {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const read = (extra: object) => dcmjs().data.DicomMessage.readFile(ab, { ...options, ...extra });
  // dcmjs throws plain errors (or strings): typed here, its message kept as the reason and the error as the cause
  const unreadable = (err: unknown) => new DelineateError("DLN_ERR_DICOM_PARSE", messageOf(err), {}, { cause: err });
  let dict: ReturnType<typeof read>;
  try {
    dict = read({});
  } catch (err) {
    // dcmjs decodes one character set only: with ISO 2022 code extensions (Japanese, Korean) it refuses the file.
    // Read it with the first set instead: the image and its geometry are intact; text in the other sets is not.
    if (!/character set/i.test(messageOf(err))) throw unreadable(err);
    try {
      dict = read({ ignoreErrors: true });
    } catch (again) {
      throw unreadable(again);
    }
  }
  try {
    const meta = dcmjs().data.DicomMetaDictionary.naturalizeDataset(dict.meta);
    const dataset = dcmjs().data.DicomMetaDictionary.naturalizeDataset(dict.dict);
    return {
      dataset,
      rawUIDs: rawUIDsOf(dict.dict),
      transferSyntaxUID: String(meta.TransferSyntaxUID ?? ""),
      mediaStorageSOPClassUID: String(meta.MediaStorageSOPClassUID ?? ""),
    };
  } catch (err) {
    throw unreadable(err);
  }
}

function rawUIDsOf(dict: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [tag, element] of Object.entries(dict)) {
    const { vr, _rawValue: raw } = element as { vr?: string; _rawValue?: unknown };
    if (vr !== "UI") continue;
    const value = Array.isArray(raw) ? raw.join("\\") : raw;
    if (typeof value === "string") out[tag] = value.replace(/[\0 ]+$/, "");
  }
  return out;
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Bytes a header is first looked for in; a longer header means reading the whole file. */
const HEADER_GUESS = 64 * 1024;

/**
 * A Part 10 file's header, read from its first bytes (the whole file when the header is longer, or the file is
 * deflated), with its lengths checked; the Pixel Data is read when `readPixelData` is called: native pixels straight
 * from their place in the file, encapsulated ones by parsing the file whole. What a folder scan needs: every header
 * at once, each image's pixels once, one at a time.
 * @throws DelineateError DLN_ERR_DICOM_PARSE when the file is not readable Part 10 (callers add which file; the
 * pixel reader names it), or an error from opening the file.
 */
export function readPart10Lazily(file: string, scratch?: ScratchBuffer): ParsedDicom {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const guess = Math.min(size, HEADER_GUESS);
    // the first bytes go into the caller's scratch when it passes one: nothing read is kept from them (values are
    // copied out), so a folder scan reads every header into one buffer
    if (scratch && (scratch.buffer?.byteLength ?? 0) < HEADER_GUESS) scratch.buffer = new ArrayBuffer(HEADER_GUESS);
    const into = scratch?.buffer ? new Uint8Array(scratch.buffer, 0, guess) : undefined;
    let bytes = readOf(file, fd, 0, guess, "", into);
    let layout = inspectPart10(bytes, size);
    const deflated = layout.transferSyntaxUID === TransferSyntax.DeflatedExplicitVRLittleEndian;
    if (layout.incomplete || (deflated && bytes.length < size)) {
      bytes = readOf(file, fd, 0, size, "");
      layout = inspectPart10(bytes);
    }
    if (layout.problem) throw new DelineateError("DLN_ERR_DICOM_PARSE", layout.problem, { file });
    const px = deflated ? undefined : layout.pixelData;
    const parsed = naturalise(px ? bytes.subarray(0, px.tagOffset) : bytes, {});
    if (!px) return parsed; // no pixels, or deflated: the whole file was parsed
    const { valueOffset, length } = px;
    const readPixelData =
      length !== undefined
        ? (scratch?: ScratchBuffer) => {
            const again = openSync(file, "r");
            try {
              if (!scratch) return [readOf(file, again, valueOffset, length, `${file}: `).buffer];
              if (scratch.buffer?.byteLength !== length) scratch.buffer = new ArrayBuffer(length);
              return [readOf(file, again, valueOffset, length, `${file}: `, new Uint8Array(scratch.buffer)).buffer];
            } finally {
              closeSync(again);
            }
          }
        : () => {
            try {
              return parsePart10(new Uint8Array(readFileSync(file))).dataset.PixelData;
            } catch (err) {
              throw new DelineateError("DLN_ERR_DICOM_PARSE", `${file}: ${messageOf(err)}`, { file }, { cause: err });
            }
          };
    return { ...parsed, readPixelData };
  } finally {
    closeSync(fd);
  }
}

/**
 * readAt, a file shorter than it was (cut after it was scanned) refused as this file's; `prefix` starts the message
 * (the file's name where the caller cannot add it: the pixel reader's callers do not know the file).
 */
function readOf(
  file: string,
  fd: number,
  position: number,
  length: number,
  prefix: string,
  into?: Uint8Array,
): Uint8Array {
  try {
    return readAt(fd, position, length, into);
  } catch (err) {
    throw new DelineateError("DLN_ERR_DICOM_PARSE", `${prefix}${messageOf(err)}`, { file }, { cause: err });
  }
}

/** Identifies Delineate as the writer of a Part 10 file (a fixed UUID-derived UID). */
export const IMPLEMENTATION_CLASS_UID = "2.25.229384291048571624209934861920340138119";

/**
 * Pixel Data written straight into the file's buffer: `fill` writes its `byteLength` bytes into `target` (zeroed), so
 * an encoder that builds a large frame set (a SEG's bit-packed frames) does not hold it twice, once built and once
 * copied into the file.
 */
export class PixelFiller {
  constructor(
    readonly byteLength: number,
    readonly fill: (target: Uint8Array) => void,
  ) {}
}

/**
 * Writes a naturalised dataset as a Part 10 file in Explicit VR Little Endian. Native pixel data (the last element:
 * an ArrayBuffer, or a PixelFiller) goes into the file's buffer after the header rather than through dcmjs's growing
 * write buffer, which would copy a large SEG's frames several times over; so do the sequences just before it (a
 * SEG's per-frame groups, an RTSTRUCT's contours), written by a SequenceWriter with the bytes dcmjs writes for them.
 */
export function writePart10(input: NaturalDataset): Uint8Array {
  // dcmjs writes every string as UTF-8: a dataset with any non-ASCII text must then say so (ISO_IR 192), whatever
  // character set its source declared, or readers decode the bytes as that set (Latin-1 "MÃ¼ller" for "Müller").
  const dataset = hasNonAscii(input) ? { ...input, SpecificCharacterSet: "ISO_IR 192" } : input;
  const meta: NaturalDataset = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: dataset.SOPClassUID,
    MediaStorageSOPInstanceUID: dataset.SOPInstanceUID,
    TransferSyntaxUID: TransferSyntax.ExplicitVRLittleEndian,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: "DELINEATE_0_1",
    _vrMap: { FileMetaInformationVersion: "OB" },
  };
  const { PixelData: pixelData, ...rest } = dataset;
  const pixels = nativePixels(rest, pixelData);
  if (pixelData instanceof PixelFiller && !pixels)
    throw new DelineateError("DLN_ERR_INTERNAL", "a PixelFiller must be the dataset's last element");
  const { DicomDict, DicomMetaDictionary } = dcmjs().data;
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  const body = (pixels ? rest : dataset) as Record<string, unknown>;
  const { head: headNames, sequences } = splitTrailingNaturalSequences(body);
  const headFields: Record<string, unknown> = Object.fromEntries(headNames.map((n) => [n, body[n]]));
  if (body._vrMap) headFields._vrMap = body._vrMap;
  const all = DicomMetaDictionary.denaturalizeDataset(headFields as NaturalDataset);
  dict.dict = Object.fromEntries(
    Object.keys(all)
      .sort()
      .map((t) => [t, all[t]]),
  );
  const head = new Uint8Array(dict.write());
  const tail = new SequenceWriter();
  tail.writeNatural(body, sequences);
  const padded = pixels ? pixels.byteLength + (pixels.byteLength % 2) : 0;
  const out = new Uint8Array(head.byteLength + tail.size + (pixels ? 12 + padded : 0));
  out.set(head);
  const at = tail.copyInto(out, head.byteLength);
  if (!pixels) return out;
  const vr = (dataset._vrMap?.PixelData as string | undefined) ?? (dataset.BitsAllocated === 16 ? "OW" : "OB");
  const view = new DataView(out.buffer, at, 12);
  view.setUint16(0, 0x7fe0, true);
  view.setUint16(2, 0x0010, true);
  out[at + 4] = vr.charCodeAt(0);
  out[at + 5] = vr.charCodeAt(1);
  view.setUint32(8, padded, true);
  const target = out.subarray(at + 12, at + 12 + pixels.byteLength);
  if (pixels instanceof PixelFiller) pixels.fill(target);
  else target.set(pixels);
  return out;
}

/** The Pixel Data to append after the header: only when it is the last element (no trailing padding or signature). */
function nativePixels(rest: NaturalDataset, pixelData: unknown): Uint8Array | PixelFiller | undefined {
  if ("DataSetTrailingPadding" in rest || "DigitalSignaturesSequence" in rest) return undefined;
  if (pixelData instanceof PixelFiller) return pixelData;
  return Array.isArray(pixelData) && pixelData.length === 1 && pixelData[0] instanceof ArrayBuffer
    ? new Uint8Array(pixelData[0])
    : undefined;
}

function hasNonAscii(value: unknown): boolean {
  // loops rather than a regular expression per string and Object.entries per item: an RTSTRUCT has a million
  // ContourData strings
  if (typeof value === "string") {
    for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0x7f) return true;
    return false;
  }
  if (Array.isArray(value)) {
    for (const v of value) if (hasNonAscii(v)) return true;
    return false;
  }
  if (value && typeof value === "object" && !(value instanceof ArrayBuffer) && !ArrayBuffer.isView(value)) {
    for (const k of Object.keys(value))
      if (k !== "_vrMap" && k !== "_meta" && hasNonAscii((value as Record<string, unknown>)[k])) return true;
  }
  return false;
}

/**
 * A parsed instance's dataset with its SOP Class UID, taken from the meta header when the dataset's is empty: a copy
 * then, the dataset itself when it has one (never assigned into, like every parsed dataset).
 */
export function withSopClass(p: ParsedDicom): NaturalDataset {
  const own = p.dataset.SOPClassUID;
  // already what the copy would hold: the dataset itself (a folder scan's 300 copies were a tenth of its time)
  if (typeof own === "string" && own !== "" && own === own.trim()) return p.dataset;
  return { ...p.dataset, SOPClassUID: str(p.dataset, "SOPClassUID") || p.mediaStorageSOPClassUID };
}

/** The first value of an attribute as a string ("" when absent or empty). */
export function str(ds: NaturalDataset, keyword: string): string {
  const v = ds[keyword];
  const first = Array.isArray(v) ? v[0] : v;
  if (first === undefined || first === null) return "";
  if (typeof first === "object" && "Alphabetic" in (first as object))
    return String((first as { Alphabetic: unknown }).Alphabetic ?? "");
  return String(first).trim();
}

/** All values of a string attribute (ImageType, say). */
export function strs(ds: NaturalDataset, keyword: string): string[] {
  const v = ds[keyword];
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).map((x) => String(x ?? "").trim());
}

/** All values of a numeric attribute; undefined when absent or not numeric. */
export function nums(ds: NaturalDataset, keyword: string): number[] | undefined {
  const v = ds[keyword];
  if (v === undefined || v === null || v === "") return undefined;
  const out = (Array.isArray(v) ? v : [v]).map((x) => Number(x));
  return out.length > 0 && out.every(Number.isFinite) ? out : undefined;
}

export function num(ds: NaturalDataset, keyword: string): number | undefined {
  return nums(ds, keyword)?.[0];
}
