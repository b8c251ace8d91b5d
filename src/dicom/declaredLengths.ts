import { DelineateError } from "../errors.js";
import { TransferSyntax } from "./uids.js";

/**
 * Walks a Part 10 file's elements (into sequences and items) and checks that every declared length fits in the
 * bytes that are there. dcmjs clamps an over-long length silently, so a file declaring, say, a 2 GB element would
 * otherwise be read as if it were whole. On the way it notes where the top-level Pixel Data lies, so a reader can
 * take the header without the pixels and the pixels without parsing the header again.
 */
const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"]);
const UNDEFINED = 0xffffffff;

/** What the walk finds wrong, thrown to its end (inspectPart10 answers it as `problem`). */
const unreadable = (why: string) => new DelineateError("DLN_ERR_DICOM_PARSE", why);

export interface Part10Layout {
  /** what is wrong with the declared lengths, if anything */
  problem?: string;
  transferSyntaxUID: string;
  /** the top-level Pixel Data element: where its header starts, where its value starts, and the value's length
   * (undefined for encapsulated pixel data of undefined length) */
  pixelData?: { tagOffset: number; valueOffset: number; length?: number };
  /** `bytes` is the file's start and ends before its Pixel Data could be located: read more */
  incomplete?: boolean;
}

/** What is wrong with a whole file's declared lengths, or undefined. */
export function checkDeclaredLengths(bytes: Uint8Array): string | undefined {
  return inspectPart10(bytes).problem;
}

/**
 * Walks a Part 10 file, or (when `fileSize` is larger than `bytes`) its first bytes: then the walk stops at the
 * top-level Pixel Data, checking its length against the file's size, and answers `incomplete` when the bytes end
 * before it (or anything looks wrong: the whole file will tell what). Deflated and non-Part-10 files are not walked.
 */
export function inspectPart10(bytes: Uint8Array, fileSize = bytes.length): Part10Layout {
  const prefix = bytes.length < fileSize;
  if (bytes.length < 132 || String.fromCharCode(...bytes.subarray(128, 132)) !== "DICM")
    return { transferSyntaxUID: "" }; // not ours to judge
  const meta = readFileMeta(bytes, prefix);
  if ("stop" in meta) return meta.stop;
  const layout: Part10Layout = { transferSyntaxUID: meta.syntax };
  if (meta.syntax === TransferSyntax.DeflatedExplicitVRLittleEndian) return layout; // deflated: the bytes are compressed
  try {
    new DatasetWalker(bytes, meta.syntax, layout, prefix ? fileSize : undefined).walk(
      meta.end,
      bytes.length,
      false,
      true,
    );
    return prefix ? { ...layout, incomplete: true } : layout;
  } catch (thrown) {
    if (thrown === PIXELS_FOUND) return layout;
    return prefix ? { ...layout, incomplete: true } : { ...layout, problem: String((thrown as Error).message) };
  }
}

/**
 * The File Meta Information group (explicit VR little endian): where it ends and the transfer syntax it names for
 * the rest, or (`stop`) the answer when an element runs past the bytes.
 */
function readFileMeta(bytes: Uint8Array, prefix: boolean): { end: number; syntax: string } | { stop: Part10Layout } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 132;
  let syntax = "";
  while (offset + 8 <= bytes.length && view.getUint16(offset, true) === 0x0002) {
    const element = view.getUint16(offset + 2, true);
    const vr = String.fromCharCode(bytes[offset + 4]!, bytes[offset + 5]!);
    const long = LONG_VRS.has(vr);
    const length = long ? view.getUint32(offset + 8, true) : view.getUint16(offset + 6, true);
    const start = offset + (long ? 12 : 8);
    if (start + length > bytes.length) {
      if (prefix) return { stop: { transferSyntaxUID: syntax, incomplete: true } };
      const problem = `file meta element (0002,${hex(element)}) declares ${length} bytes, past the end of the file`;
      return { stop: { transferSyntaxUID: syntax, problem } };
    }
    if (element === 0x0010)
      syntax = new TextDecoder().decode(bytes.subarray(start, start + length)).replace(/[\0 ]+$/, "");
    offset = start + length;
  }
  return { end: offset, syntax };
}

/** Thrown by a prefix walk when it reaches the top-level Pixel Data: the header is all there. */
const PIXELS_FOUND = Symbol("pixel data found");

/**
 * Walks the data set after the file meta in the file's transfer syntax, into sequences and items, throwing at the
 * first declared length that does not fit. Notes the top-level Pixel Data in `layout`; given the `fileSize` of a
 * prefix, stops there (throwing PIXELS_FOUND).
 */
class DatasetWalker {
  private readonly view: DataView;
  private readonly explicit: boolean;
  private readonly little: boolean;

  constructor(
    private readonly bytes: Uint8Array,
    syntax: string,
    private readonly layout: Part10Layout,
    private readonly prefixOf?: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.explicit = syntax !== TransferSyntax.ImplicitVRLittleEndian;
    this.little = syntax !== TransferSyntax.ExplicitVRBigEndian;
  }

  /** Walks elements in [from, end); inside an undefined-length item it stops after the item delimiter. */
  walk(from: number, end: number, inUndefinedItem: boolean, top = false): number {
    const { view, little } = this;
    let o = from;
    while (o < end) {
      if (o + 8 > end) throw unreadable(`an element header at byte ${o} runs past the end of the file`);
      const group = view.getUint16(o, little),
        element = view.getUint16(o + 2, little);
      if (group === 0xfffe) {
        const length = view.getUint32(o + 4, little);
        if (element === 0xe00d) return o + 8; // item delimiter
        if (element === 0xe0dd) return o + 8; // sequence delimiter (closes the caller's sequence)
        throw unreadable(`an unexpected item tag (FFFE,${hex(element)}) at byte ${o} (length ${length})`);
      }
      const { vr, length, start } = this.elementHeader(o, end, group, element);
      if (top && group === 0x7fe0 && element === 0x0010) this.pixelData(o, start, length);
      if (length === UNDEFINED) {
        o = this.items(start, end, true); // a sequence, or encapsulated pixel data: items up to the sequence delimiter
        continue;
      }
      if (start + length > end) {
        throw unreadable(
          `element (${hex(group)},${hex(element)}) declares ${length} bytes at byte ${start}, but only ${end - start} remain`,
        );
      }
      if (vr === "SQ") this.items(start, start + length, false);
      o = start + length;
    }
    if (inUndefinedItem) throw unreadable("an item without its delimiter runs to the end of the file");
    return o;
  }

  /** An element's VR (explicit syntaxes only), declared length and where its value starts. */
  private elementHeader(
    o: number,
    end: number,
    group: number,
    element: number,
  ): { vr: string; length: number; start: number } {
    const { view, little } = this;
    if (!this.explicit) return { vr: "", length: view.getUint32(o + 4, little), start: o + 8 };
    const vr = String.fromCharCode(this.bytes[o + 4]!, this.bytes[o + 5]!);
    if (!LONG_VRS.has(vr)) return { vr, length: view.getUint16(o + 6, little), start: o + 8 };
    if (o + 12 > end) throw unreadable(`the header of (${hex(group)},${hex(element)}) runs past the end of the file`);
    return { vr, length: view.getUint32(o + 8, little), start: o + 12 };
  }

  /** Notes the top-level Pixel Data; a prefix walk checks its length against the file's size and stops here. */
  private pixelData(tagOffset: number, valueOffset: number, length: number): void {
    this.layout.pixelData = { tagOffset, valueOffset, ...(length === UNDEFINED ? {} : { length }) };
    if (this.prefixOf === undefined) return;
    if (length !== UNDEFINED && valueOffset + length > this.prefixOf)
      throw unreadable("pixel data past the end of the file");
    throw PIXELS_FOUND; // the rest is pixels (and rarely padding): not needed for a header
  }

  /** Walks the items of a sequence in [from, end), or up to its delimiter when `delimited`; returns where it ends. */
  private items(from: number, end: number, delimited: boolean): number {
    const { view, little } = this;
    let o = from;
    while (o < end) {
      if (o + 8 > end) throw unreadable(`an item header at byte ${o} runs past the end of the file`);
      const group = view.getUint16(o, little),
        element = view.getUint16(o + 2, little),
        length = view.getUint32(o + 4, little);
      if (group !== 0xfffe) throw unreadable(`expected an item at byte ${o}, found (${hex(group)},${hex(element)})`);
      if (element === 0xe0dd) return o + 8;
      if (element !== 0xe000) throw unreadable(`an unexpected item tag (FFFE,${hex(element)}) at byte ${o}`);
      if (length === UNDEFINED) {
        o = this.walk(o + 8, end, true);
        continue;
      }
      if (o + 8 + length > end)
        throw unreadable(`an item at byte ${o} declares ${length} bytes, but only ${end - o - 8} remain`);
      o = o + 8 + length; // defined-length item content (a dataset, or a pixel data fragment) fits
    }
    if (delimited) throw unreadable("a sequence without its delimiter runs to the end of the file");
    return o;
  }
}

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, "0");
}
