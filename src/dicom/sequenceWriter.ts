import { dcmjs } from "./dcmjsLibrary.js";
import { TransferSyntax } from "./uids.js";

/** An element of a denaturalised dataset, as dcmjs holds it: its VR and its values (items, for a sequence). */
interface DictElement {
  vr: string;
  Value?: unknown[];
}
type Dict = Record<string, DictElement>;

/** Item, item delimitation and sequence delimitation tags with their lengths, as dcmjs writes them (explicit VR LE). */
const ITEM = new Uint8Array([0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]);
const ITEM_END = new Uint8Array([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0]);
const SEQUENCE_END = new Uint8Array([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);

/**
 * Writes sequences of a denaturalised dataset in explicit VR little endian with the bytes dcmjs writes for them,
 * without dcmjs's per-element cost: a SEG of 100 segments on 300 slices has 6000 per-frame items of some twenty
 * elements each, and dcmjs's growing write buffer took seconds over them. The structure (undefined lengths, item and
 * sequence delimiters, tags in ascending order) is written here; each leaf element is written by dcmjs itself, once
 * per distinct tag, VR and value (the per-frame items repeat most of theirs), so every value keeps dcmjs's padding
 * and formatting. The unit tests check the whole file equals dcmjs's own.
 */
export class SequenceWriter {
  private readonly chunks: Uint8Array[] = [];
  private readonly leaves = new Map<string, Uint8Array>();
  /** leaf bytes by natural name, VR and value */
  private readonly naturalLeaves = new Map<string, Uint8Array>();
  size = 0;

  /** Appends elements `tags` of `dict` (in the order given; callers pass them ascending). */
  writeElements(dict: Dict, tags: readonly string[]): void {
    for (const tag of tags) this.element(tag, dict[tag]!);
  }

  /**
   * Appends elements `names` of a naturalised dataset (in the order given: ascending tags, as
   * `splitTrailingNaturalSequences` returns them), with the bytes `writeElements` writes for dcmjs's denaturalised
   * form of them, without denaturalising the whole of them first: dcmjs copies every value array twice doing so, a
   * million ContourData values in a large RTSTRUCT. Sequences are walked here; a DS element of `ds()` text is written
   * from its natural values, which denaturalising leaves as they are (numbers become text, text over 16 characters
   * is cut: neither is `ds()` text); any other leaf is denaturalised by dcmjs on its own, once per distinct value.
   */
  writeNatural(dataset: Record<string, unknown>, names: readonly string[]): void {
    const vrMap = dataset._vrMap as Record<string, string> | undefined;
    for (const name of names) this.naturalElement(name, dataset[name], vrMap);
  }

  private naturalElement(name: string, value: unknown, vrMap: Record<string, string> | undefined): void {
    const entry = dictionaryEntry(name);
    if (!entry || value === undefined) return; // what dcmjs's denaturalisation drops
    const vr = vrMap?.[name] ?? entry.vr;
    if (vr === "SQ") {
      this.push(sequenceHead(entry.tag));
      for (const item of value === null ? [] : Array.isArray(value) ? value : [value]) {
        const fields = item as Record<string, unknown>;
        this.push(ITEM);
        this.writeNatural(fields, naturalOrder(fields));
        this.push(ITEM_END);
      }
      this.push(SEQUENCE_END);
      return;
    }
    const decimal = vr === "DS" && Array.isArray(value) && value.length ? decimalElement(entry.tag, value) : undefined;
    if (decimal) {
      this.push(decimal);
      return;
    }
    const plain =
      value === null ||
      typeof value === "string" ||
      typeof value === "number" ||
      (Array.isArray(value) && value.every((v) => v === null || typeof v === "string" || typeof v === "number"));
    const key = plain ? `${name}\u0000${vr}\u0000${JSON.stringify(value)}` : undefined;
    const known = key === undefined ? undefined : this.naturalLeaves.get(key);
    if (known) {
      this.push(known);
      return;
    }
    const dict = dcmjs().data.DicomMetaDictionary.denaturalizeDataset({
      [name]: value,
      ...(vrMap?.[name] ? { _vrMap: { [name]: vrMap[name] } } : {}),
    }) as Dict;
    const el = dict[entry.tag];
    if (!el) return;
    const start = this.chunks.length;
    this.element(entry.tag, el);
    if (key !== undefined && this.chunks.length === start + 1) this.naturalLeaves.set(key, this.chunks[start]!);
  }

  /** Copies what was written into `target` from `offset`; returns the offset after it. */
  copyInto(target: Uint8Array, offset: number): number {
    let at = offset;
    for (const c of this.chunks) {
      target.set(c, at);
      at += c.byteLength;
    }
    return at;
  }

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.size += bytes.byteLength;
  }

  private element(tag: string, el: DictElement): void {
    if (el.vr !== "SQ") {
      this.push(this.leaf(tag, el));
      return;
    }
    this.push(sequenceHead(tag));
    for (const item of (el.Value ?? []) as Dict[]) {
      this.push(ITEM);
      this.writeElements(item, Object.keys(item).sort());
      this.push(ITEM_END);
    }
    this.push(SEQUENCE_END);
  }

  /** One leaf element as dcmjs writes it, memoised when its values are plain strings and numbers. */
  private leaf(tag: string, el: DictElement): Uint8Array {
    const numeric = NUMERIC[el.vr];
    // denaturalised numbers may be strings ("1"): dcmjs hands them to a DataView, which converts them as Number does
    const values = numeric
      ? el.Value?.map((v) => (typeof v === "number" || (typeof v === "string" && v.trim()) ? Number(v) : Number.NaN))
      : undefined;
    if (numeric && values && Object.keys(el).length === 2 && values.every(Number.isFinite))
      return numericElement(tag, el.vr, numeric, values);
    const decimal =
      el.vr === "DS" && Object.keys(el).length === 2 && el.Value?.length ? decimalElement(tag, el.Value) : undefined;
    if (decimal) return decimal;
    const plain =
      Object.keys(el).every((k) => k === "vr" || k === "Value") &&
      (el.Value ?? []).every((v) => v === null || typeof v === "string" || typeof v === "number");
    const key = plain ? `${tag}${el.vr}${JSON.stringify(el.Value ?? null)}` : undefined;
    const known = key === undefined ? undefined : this.leaves.get(key);
    if (known) return known;
    const { DicomMessage, WriteBufferStream } = dcmjs().data;
    const stream = new WriteBufferStream(256, true);
    DicomMessage.write({ [tag]: el }, stream, TransferSyntax.ExplicitVRLittleEndian, {
      allowInvalidVRLength: false,
    });
    const bytes = new Uint8Array(stream.getBuffer());
    if (key !== undefined) this.leaves.set(key, bytes);
    return bytes;
  }
}

/** A sequence's tag, VR and undefined length, as dcmjs writes them. */
function sequenceHead(tag: string): Uint8Array {
  const head = new Uint8Array(12);
  const view = new DataView(head.buffer);
  view.setUint16(0, Number.parseInt(tag.slice(0, 4), 16), true);
  view.setUint16(2, Number.parseInt(tag.slice(4, 8), 16), true);
  head[4] = 0x53; // "S"
  head[5] = 0x51; // "Q"
  view.setUint32(8, 0xffffffff, true);
  return head;
}

/** A natural name's tag (as dcmjs's denaturalised keys spell it) and dictionary VR; undefined when dcmjs has none. */
function dictionaryEntry(name: string): { tag: string; vr: string } | undefined {
  const { nameMap } = dcmjs().data.DicomMetaDictionary;
  const entry = Object.hasOwn(nameMap, name) ? nameMap[name] : undefined;
  return entry ? { tag: dcmjs().data.DicomMetaDictionary.unpunctuateTag(entry.tag), vr: entry.vr } : undefined;
}

/** The names of a naturalised item that dcmjs writes, by ascending tag. */
function naturalOrder(item: Record<string, unknown>): string[] {
  const tagged: [string, string][] = [];
  for (const name of Object.keys(item)) {
    const entry = item[name] === undefined ? undefined : dictionaryEntry(name);
    if (entry) tagged.push([entry.tag, name]);
  }
  return tagged.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, name]) => name);
}

/**
 * The names of a naturalised dataset dcmjs writes, by ascending tag, split where the trailing run of sequences
 * begins (as `splitTrailingSequences` splits its denaturalised tags).
 */
export function splitTrailingNaturalSequences(dataset: Record<string, unknown>): {
  head: string[];
  sequences: string[];
} {
  const names = naturalOrder(dataset);
  const vrMap = dataset._vrMap as Record<string, string> | undefined;
  let cut = names.length;
  while (cut > 0 && (vrMap?.[names[cut - 1]!] ?? dictionaryEntry(names[cut - 1]!)?.vr) === "SQ") cut--;
  return { head: names.slice(0, cut), sequences: names.slice(cut) };
}

/** Binary VRs with a 2-byte length, written here: bytes per value and how to set one. */
const NUMERIC: Record<string, [number, (view: DataView, at: number, v: number) => void]> = {
  US: [2, (d, at, v) => d.setUint16(at, v, true)],
  SS: [2, (d, at, v) => d.setInt16(at, v, true)],
  UL: [4, (d, at, v) => d.setUint32(at, v, true)],
  SL: [4, (d, at, v) => d.setInt32(at, v, true)],
  FL: [4, (d, at, v) => d.setFloat32(at, v, true)],
  FD: [8, (d, at, v) => d.setFloat64(at, v, true)],
};

/** A US, SS, UL, SL, FL or FD element: tag, VR, 2-byte length, values little-endian (as dcmjs writes them). */
function numericElement(
  tag: string,
  vr: string,
  [size, set]: [number, (view: DataView, at: number, v: number) => void],
  values: readonly number[],
): Uint8Array {
  const out = new Uint8Array(8 + size * values.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, Number.parseInt(tag.slice(0, 4), 16), true);
  view.setUint16(2, Number.parseInt(tag.slice(4, 8), 16), true);
  out[4] = vr.charCodeAt(0);
  out[5] = vr.charCodeAt(1);
  view.setUint16(6, size * values.length, true);
  for (const [i, v] of values.entries()) set(view, 8 + i * size, v);
  return out;
}

/**
 * A DS element of values dcmjs writes as they are, non-empty strings of at most 16 number characters (what `ds()`
 * makes, an RTSTRUCT's ContourData): joined by backslashes, padded with a space to an even length, as dcmjs writes
 * it. Undefined (left to dcmjs) for any other value, or when the text is longer than a 2-byte length holds. The
 * values are checked on their joined text in one pass (a million of them in a large RTSTRUCT).
 */
function decimalElement(tag: string, values: readonly unknown[]): Uint8Array | undefined {
  if (!values.every((v) => typeof v === "string")) return undefined;
  const text = values.join("\\");
  const length = text.length + (text.length % 2);
  if (length > 0xfffe) return undefined;
  const out = new Uint8Array(8 + length);
  // copied as UTF-8, then checked byte by byte: every value 1 to 16 of 0-9 . e E + - (so the text was ASCII), and as
  // many backslashes as there are values to join
  new TextEncoder().encodeInto(text, out.subarray(8, 8 + text.length));
  let run = 0,
    separators = 0;
  for (let i = 8, end = 8 + text.length; i < end; i++) {
    const c = out[i]!;
    if (c === 0x5c) {
      if (run === 0) return undefined;
      separators++;
      run = 0;
    } else if (!DECIMAL_CHARACTER[c] || ++run > 16) return undefined;
  }
  if (run === 0 || separators !== values.length - 1) return undefined;
  const view = new DataView(out.buffer);
  view.setUint16(0, Number.parseInt(tag.slice(0, 4), 16), true);
  view.setUint16(2, Number.parseInt(tag.slice(4, 8), 16), true);
  out[4] = 0x44; // "D"
  out[5] = 0x53; // "S"
  view.setUint16(6, length, true);
  if (length > text.length) out[8 + text.length] = 0x20;
  return out;
}

/** The characters of a DS value `ds()` writes (0-9 . e E + -), by character code. */
const DECIMAL_CHARACTER = (() => {
  const table = new Uint8Array(128);
  for (const c of "0123456789.eE+-") table[c.charCodeAt(0)] = 1;
  return table;
})();

/**
 * The tags of `dict`, ascending, split where the trailing run of sequences begins: dcmjs writes the head, and a
 * SequenceWriter the sequences after it (what is last in a SEG, RTSTRUCT or SR before Pixel Data is its bulk).
 */
export function splitTrailingSequences(dict: Record<string, unknown>): { head: string[]; sequences: string[] } {
  const tags = Object.keys(dict).sort();
  let cut = tags.length;
  while (cut > 0 && (dict[tags[cut - 1]!] as DictElement | undefined)?.vr === "SQ") cut--;
  return { head: tags.slice(0, cut), sequences: tags.slice(cut) };
}
