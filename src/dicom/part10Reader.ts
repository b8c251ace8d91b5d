import type { NaturalDataset } from "dcmjs";
import { ENCODINGS, oneItemList, type PersonName, personNames, withPersonNameAccessors } from "./naturalForms.js";
import { STANDARD_TAGS, TAG_RANGES } from "./standardDictionary.js";
import { TransferSyntax } from "./uids.js";

/**
 * Our own reader of a Part 10 file into dcmjs's naturalised form, for the common case: Explicit or Implicit VR
 * Little Endian data sets (and the header of an encapsulated one), sequences of defined and undefined length.
 *
 * Why not dcmjs: its reader costs 2–5 ms of CPU per CT header (a stream object per item, a Tag object and a
 * string per element, strings built a character at a time), 62% of `convert`'s time on a 300-slice series
 * (bench/CONVERT.md). This reader gives the same dict dcmjs's `DicomMessage.readFile` gives (tag → { vr, Value }),
 * value by value, and naturalises it as `DicomMetaDictionary.naturalizeDataset` does, with dcmjs's dictionary
 * (src/dicom/standardDictionary.ts, generated from it) and value forms (naturalForms.ts): dcmjs itself is not
 * loaded unless a file needs it. Where dcmjs would do something this reader does
 * not copy exactly (big endian, deflate, encapsulated pixel data, a VR of UN for a known tag, a length that does not
 * fit, an unsupported character set, any error), it answers undefined and the caller asks dcmjs, which then gives
 * the same dataset, or the same error, as before. test/unit/part10Reader.test.ts compares the two on every file.
 */

type DictEntry = { vr?: string; name: string };

/** What `readFile` gives per element, the input of `naturalizeDataset`; with its dictionary entry, looked up once. */
interface Element {
  vr: string;
  Value: unknown[];
  entry: DictEntry | undefined;
  /** a UI value's text before dcmjs's cleaning (ParsedDicom.rawUIDs) */
  raw?: string;
}
type Dict = Record<string, Element>;

/** Thrown inside the reader where dcmjs must decide: the file is read by dcmjs instead. */
class NotOurs extends Error {}

const UNDEFINED = 0xffffffff;
const ITEM = 0xfffee000;
const SEQUENCE_DELIMITER = 0xfffee0dd;
const SPECIFIC_CHARACTER_SET = 0x00080005;
const PIXEL_DATA = 0x7fe00010;
/** the VRs dcmjs knows; any other it reads as UN */
const VR_TYPES = new Set(
  "AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OW PN SH SL SQ SS ST TM UC UI UL UN UR US UT UV".split(" "),
);
/** the VRs dcmjs reads with a 32-bit length in explicit VR (its list: not OL, OV, SV, which it reads as UN) */
const LENGTH32 = new Set(["OB", "OW", "OF", "SQ", "UC", "UR", "UT", "UN", "OD", "UV"]);
/** bytes per value of the binary VRs dcmjs reads as numbers (UV, a BigInt, is left to dcmjs) */
const BINARY_SIZE: Record<string, number> = { FL: 4, FD: 8, SL: 4, SS: 2, UL: 4, US: 2, AT: 4 };
/** what dcmjs gives for an empty value of those VRs (their `defaultValue`; AT has none) */
const BINARY_EMPTY: Record<string, number | undefined> = { FL: 0, FD: 0, SL: 0, SS: 0, UL: 0, US: 0, AT: undefined };

/** dcmjs's standard dictionary, by tag number. A constant table. */
const STANDARD = new Map(STANDARD_TAGS.map(([tag, vr, name]) => [tag, { vr, name }]));

/** A tag's entry as dcmjs's dictionary answers "(GGGG,EEEE)": its table, else a repeating-group range. */
function dictionaryEntry(tag: number): DictEntry | undefined {
  const entry = STANDARD.get(tag);
  if (entry) return entry;
  const group = tag >>> 16;
  const element = tag & 0xffff;
  const range = TAG_RANGES.find(([min, max, el]) => group >= min && group <= max && element === el);
  return range && { vr: range[3], name: range[4] };
}

/** Memo per tag of its key and entry: a cache of constant answers, not state. */
const tagInfos = new Map<number, { key: string; entry: DictEntry | undefined }>();
function tagInfo(tag: number): { key: string; entry: DictEntry | undefined } {
  let info = tagInfos.get(tag);
  if (!info) {
    info = { key: tag.toString(16).toUpperCase().padStart(8, "0"), entry: dictionaryEntry(tag) };
    tagInfos.set(tag, info);
  }
  return info;
}

/** TextDecoders per label, as dcmjs makes them (stateless: decode() without streaming). */
const decoders = new Map<string, TextDecoder>();
function decoderFor(label: string): TextDecoder {
  let d = decoders.get(label);
  if (!d) {
    d = new TextDecoder(label);
    decoders.set(label, d);
  }
  return d;
}

export interface NaturalPart10 {
  dataset: NaturalDataset;
  rawUIDs: Record<string, string>;
  transferSyntaxUID: string;
  mediaStorageSOPClassUID: string;
}

/**
 * A Part 10 file's data set (all of `bytes`: pass the bytes before Pixel Data for a header), naturalised exactly as
 * dcmjs would; undefined when dcmjs must read it (see above). Never throws.
 */
export function readPart10Natural(bytes: Uint8Array): NaturalPart10 | undefined {
  try {
    return new Part10Reader(bytes).read();
  } catch {
    return undefined; // NotOurs, or anything unexpected: dcmjs decides, as it always did
  }
}

class Part10Reader {
  private readonly view: DataView;
  private readonly buffer: Buffer;
  private implicit = false;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  read(): NaturalPart10 {
    const { bytes, view } = this;
    if (bytes.length < 144 || this.buffer.toString("latin1", 128, 132) !== "DICM") throw new NotOurs();
    // dcmjs takes the meta group's extent from its group length, which must come first
    if (view.getUint32(132, true) !== 0x00000002 || this.buffer.toString("latin1", 136, 138) !== "UL")
      throw new NotOurs();
    if (view.getUint16(138, true) !== 4) throw new NotOurs();
    const metaEnd = 144 + view.getUint32(140, true);
    if (metaEnd > bytes.length) throw new NotOurs();
    const meta = this.dataset(144, metaEnd);
    const syntax = meta["00020010"]?.Value[0];
    if (typeof syntax !== "string") throw new NotOurs();
    // dcmjs reads every syntax but these as explicit VR little endian (encapsulated ones are, up to their pixels)
    if (syntax === TransferSyntax.DeflatedExplicitVRLittleEndian || syntax === TransferSyntax.ExplicitVRBigEndian)
      throw new NotOurs();
    this.implicit = syntax === TransferSyntax.ImplicitVRLittleEndian;
    const dict = this.dataset(metaEnd, bytes.length);
    const naturalMeta = naturalise(meta);
    const rawUIDs: Record<string, string> = {};
    for (const [tag, element] of Object.entries(dict)) if (element.raw !== undefined) rawUIDs[tag] = element.raw;
    return {
      dataset: naturalise(dict),
      rawUIDs,
      transferSyntaxUID: String(naturalMeta.TransferSyntaxUID ?? ""),
      mediaStorageSOPClassUID: String(naturalMeta.MediaStorageSOPClassUID ?? ""),
    };
  }

  /** The elements in [from, end), as dcmjs's `_read` gives them; each data set starts in dcmjs's default Latin-1. */
  private dataset(from: number, end: number): Dict {
    const { view, bytes } = this;
    const dict: Dict = {};
    let charset: string | undefined;
    let o = from;
    while (o < end) {
      if (o + 8 > end) throw new NotOurs();
      const tag = ((view.getUint16(o, true) << 16) | view.getUint16(o + 2, true)) >>> 0;
      const info = tagInfo(tag);
      let vr: string;
      let length: number;
      let start: number;
      if (this.implicit) {
        length = view.getUint32(o + 4, true);
        start = o + 8;
        if (info.entry) vr = vrType(info.entry.vr);
        else if (length === UNDEFINED) vr = "SQ";
        else if (tag === PIXEL_DATA) vr = "OW";
        else vr = isPrivateCreator(tag) ? "LO" : "UN";
      } else {
        const written = String.fromCharCode(bytes[o + 4]!, bytes[o + 5]!);
        // dcmjs re-reads a known tag's UN value in the dictionary's VR, without splitting strings: not copied here
        if (written === "UN" && info.entry?.vr) throw new NotOurs();
        vr = vrType(written);
        if (LENGTH32.has(vr)) {
          if (o + 12 > end) throw new NotOurs();
          length = view.getUint32(o + 8, true);
          start = o + 12;
        } else {
          length = view.getUint16(o + 6, true);
          start = o + 8;
        }
      }
      let value: unknown[];
      if (vr === "SQ") {
        const sq = this.sequence(start, length, end);
        value = sq.items;
        o = sq.next;
      } else {
        // undefined length outside a sequence is encapsulated pixel data: dcmjs splits it into frames
        if (length === UNDEFINED || start + length > end) throw new NotOurs();
        value = this.values(vr, start, length, charset);
        o = start + length;
      }
      if (tag === SPECIFIC_CHARACTER_SET) {
        // dcmjs decodes the rest with the first set and calls the data set UTF-8; several sets make it throw
        const coding = String(value[0]).replace(/[_ ]/g, "-").toLowerCase();
        if (value.length !== 1 || !Object.hasOwn(ENCODINGS, coding)) throw new NotOurs();
        charset = ENCODINGS[coding];
        value = ["ISO_IR 192"];
      }
      if (Object.hasOwn(dict, info.key)) throw new NotOurs(); // a repeated tag: dcmjs keeps the first's place
      // dcmjs would give a person name read with another VR accessors of its own (a String object, say)
      if (info.entry?.vr === "PN" && vr !== "PN") throw new NotOurs();
      dict[info.key] = {
        vr,
        Value: vr === "PN" ? withPersonNameAccessors(value as PersonName[]) : value,
        entry: info.entry,
        ...(vr === "UI" && { raw: this.ascii(start, start + length).replace(/[\0 ]+$/, "") }),
      };
    }
    return dict;
  }

  /**
   * A sequence's items from `start` (its value), as dcmjs's SequenceOfItems reads them: empty items are dropped, an
   * item of undefined length ends at the first item delimiter its scan finds (dcmjs's scan, copied).
   */
  private sequence(start: number, length: number, end: number): { items: Dict[]; next: number } {
    if (length === 0) return { items: [], next: start };
    const undefinedLength = length === UNDEFINED;
    const limit = undefinedLength ? end : start + length;
    if (limit > end) throw new NotOurs();
    const items: Dict[] = [];
    let o = start;
    for (;;) {
      if (o + 8 > limit) throw new NotOurs();
      const tag = this.tagAt(o);
      if (tag === SEQUENCE_DELIMITER) {
        o += 8;
        break;
      }
      if (tag !== ITEM) throw new NotOurs();
      const itemLength = this.view.getUint32(o + 4, true);
      const itemStart = o + 8;
      if (itemLength === UNDEFINED) {
        const delimiter = this.itemDelimiter(itemStart, limit);
        if (delimiter > itemStart) items.push(this.dataset(itemStart, delimiter));
        o = delimiter + 8;
      } else {
        if (itemStart + itemLength > limit) throw new NotOurs();
        if (itemLength > 0) items.push(this.dataset(itemStart, itemStart + itemLength));
        o = itemStart + itemLength;
      }
      if (!undefinedLength && o === limit) break;
    }
    if (!undefinedLength && o !== limit) throw new NotOurs();
    return { items, next: o };
  }

  /**
   * Where an item of undefined length ends, found as dcmjs finds it: 16-bit words scanned for (FFFE,E00D) with a zero
   * length, counting nested items of undefined length.
   */
  private itemDelimiter(from: number, end: number): number {
    const { view } = this;
    let depth = 0;
    let p = from;
    for (;;) {
      if (p + 2 > end) throw new NotOurs();
      const group = view.getUint16(p, true);
      p += 2;
      if (group !== 0xfffe) continue;
      if (p + 6 > end) throw new NotOurs();
      const element = view.getUint16(p, true);
      const length = view.getUint32(p + 2, true);
      p += 2;
      if (element === 0xe00d) {
        if (length !== 0) throw new NotOurs(); // dcmjs's byte count goes astray here
        depth--;
        if (depth < 0) return p - 4;
      } else if (element === 0xe000) {
        if (length === UNDEFINED) depth++;
      } else {
        p -= 2;
      }
    }
  }

  private tagAt(o: number): number {
    return ((this.view.getUint16(o, true) << 16) | this.view.getUint16(o + 2, true)) >>> 0;
  }

  /** One element's values, as dcmjs's VR classes read and format them. */
  private values(vr: string, start: number, length: number, charset: string | undefined): unknown[] {
    const end = start + length;
    switch (vr) {
      case "OB":
      case "OW":
      case "OD":
      case "OF":
      case "UN":
        return [this.bytes.slice(start, end).buffer];
      case "AE":
        return splitDropPad(this.ascii(start, end).trim());
      case "AS":
        return splitDropPad(this.ascii(start, end));
      case "CS":
        return dropPad(this.ascii(start, end).split("\\")).map((s) => s.trim());
      case "DA":
        return splitDropPad(this.ascii(start, end));
      case "DS":
        return dropPad(this.ascii(start, end).split("\\")).map(numberOf);
      case "IS":
        return dropPad(this.ascii(start, end).split("\\")).map(numberOf);
      case "DT":
        return splitDropPad(this.ascii(start, end));
      case "TM":
        return splitDropPad(this.ascii(start, end).trimEnd());
      case "UR":
        return this.ascii(start, end).split("\\");
      case "UI": {
        const raw = length > 0 && this.bytes[end - 1] === 0 ? this.ascii(start, end - 1) : this.ascii(start, end);
        return raw.split("\\").map((s) => s.replace(/[^0-9.]/g, ""));
      }
      case "LO":
        return splitDropPad(this.text(start, end, charset).trim());
      case "SH":
        return splitDropPad(this.text(start, end, charset).trim());
      case "ST":
        return splitDropPad(this.text(start, end, charset).trimEnd());
      case "UC":
      case "UT":
        return this.text(start, end, charset).trimEnd().split("\\");
      case "LT":
        return [this.text(start, end, charset).trimEnd()];
      case "PN": {
        const s = this.text(start, end, charset);
        return personNames(s.length > 0 && !s.endsWith(" ") ? s : s.slice(0, -1));
      }
      default:
        return this.numbers(vr, start, length);
    }
  }

  /** FL, FD, SL, SS, UL, US, AT: one number per value, as dcmjs reads them (a ragged length is left to dcmjs). */
  private numbers(vr: string, start: number, length: number): unknown[] {
    const size = BINARY_SIZE[vr];
    if (size === undefined) throw new NotOurs();
    if (length === 0) return [BINARY_EMPTY[vr]];
    if (length % size !== 0) throw new NotOurs();
    const { view } = this;
    const out: number[] = [];
    for (let p = start; p < start + length; p += size) {
      if (vr === "US") out.push(view.getUint16(p, true));
      else if (vr === "SS") out.push(view.getInt16(p, true));
      else if (vr === "UL") out.push(view.getUint32(p, true));
      else if (vr === "SL") out.push(view.getInt32(p, true));
      else if (vr === "FL") out.push(view.getFloat32(p, true));
      else if (vr === "FD") out.push(view.getFloat64(p, true));
      else out.push(this.tagAt(p)); // AT
    }
    return out;
  }

  /** Bytes as dcmjs's readAsciiString makes them: one character per byte. */
  private ascii(start: number, end: number): string {
    return this.buffer.toString("latin1", start, end);
  }

  /** A string VR's bytes decoded as dcmjs decodes them: its TextDecoder for the character set, Latin-1 by default. */
  private text(start: number, end: number, charset: string | undefined): string {
    const { bytes } = this;
    let ascii = true;
    for (let i = start; i < end; i++) {
      if (bytes[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    // every decoder dcmjs uses reads ASCII bytes as themselves
    if (ascii) return this.buffer.toString("latin1", start, end);
    return decoderFor(charset ?? "latin1").decode(bytes.subarray(start, end));
  }
}

/** dcmjs's VR for a type string: the dictionary's "ox" and "xs" as OW and US, anything unknown as UN. */
function vrType(type: string | undefined): string {
  if (type !== undefined && VR_TYPES.has(type)) return type;
  if (type === "ox") return "OW";
  if (type === "xs") return "US";
  return "UN";
}

function isPrivateCreator(tag: number): boolean {
  const group = tag >>> 16;
  const element = tag & 0xffff;
  return group % 2 === 1 && element < 0x100 && element > 0;
}

/** dcmjs's dropPadByte: a multi-valued element's odd-length last value loses its trailing space. */
function dropPad(values: string[]): string[] {
  if (values.length > 1) {
    const last = values[values.length - 1]!;
    if (last.length % 2 !== 0 && last.endsWith(" ")) values[values.length - 1] = last.slice(0, -1);
  }
  return values;
}

function splitDropPad(s: string): string[] {
  return dropPad(s.split("\\"));
}

/** dcmjs's DS and IS formatting: stray characters dropped, empty as null. */
function numberOf(s: string): number | null {
  const cleaned = s.trim().replace(/[^0-9.\\\-+e]/gi, "");
  return cleaned === "" ? null : Number(cleaned);
}

/**
 * dcmjs's DicomMetaDictionary.naturalizeDataset, step for step, into a plain object where dcmjs makes a Proxy whose
 * one trap gives person names assigned later dcmjs's accessors (nothing in Delineate assigns into a parsed dataset;
 * the headers scanFolder keeps were always plain copies). What the trap does on the way, for values read, is done
 * here: person-name values carry the accessors already, and a person name read with another VR is left to dcmjs.
 * The Proxy cost a dictionary of every keyword built on first use and a slow copy of each dataset after.
 */
function naturalise(dict: Dict): NaturalDataset {
  const vrMap: Record<string, string> = {};
  const natural: NaturalDataset = { _vrMap: vrMap };
  for (const key of Object.keys(dict)) {
    const data = dict[key]!;
    const entry = data.entry;
    let name = key;
    if (entry) {
      name = entry.name;
      if (entry.vr === "ox") vrMap[name] = data.vr;
      if (data.vr !== entry.vr) vrMap[name] = data.vr;
    }
    const value: unknown[] = data.vr === "SQ" ? (data.Value as Dict[]).map(naturalise) : data.Value;
    if (value.length === 1) {
      const first = value[0];
      natural[name] =
        first && typeof first === "object" && !(first as { length?: unknown }).length
          ? oneItemList(value, first)
          : first;
    } else {
      natural[name] = value;
    }
  }
  return natural;
}
