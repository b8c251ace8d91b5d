/**
 * Walks a Part 10 file's elements (into sequences and items) and checks that every declared length fits in the
 * bytes that are there. dcmjs clamps an over-long length silently, so a file declaring, say, a 2 GB element would
 * otherwise be read as if it were whole. Returns what is wrong, or undefined.
 */
const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"]);
const UNDEFINED = 0xffffffff;

export function checkDeclaredLengths(bytes: Uint8Array): string | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 132 || String.fromCharCode(...bytes.subarray(128, 132)) !== "DICM") return undefined; // not ours to judge
  // File meta: explicit VR little endian; it names the transfer syntax of the rest.
  let offset = 132;
  let syntax = "";
  while (offset + 8 <= bytes.length && view.getUint16(offset, true) === 0x0002) {
    const element = view.getUint16(offset + 2, true);
    const vr = String.fromCharCode(bytes[offset + 4]!, bytes[offset + 5]!);
    const long = LONG_VRS.has(vr);
    const length = long ? view.getUint32(offset + 8, true) : view.getUint16(offset + 6, true);
    const start = offset + (long ? 12 : 8);
    if (start + length > bytes.length) return `file meta element (0002,${hex(element)}) declares ${length} bytes, past the end of the file`;
    if (element === 0x0010) syntax = new TextDecoder().decode(bytes.subarray(start, start + length)).replace(/[\0 ]+$/, "");
    offset = start + length;
  }
  if (syntax === "1.2.840.10008.1.2.1.99") return undefined; // deflated: the bytes are compressed
  const explicit = syntax !== "1.2.840.10008.1.2";
  const little = syntax !== "1.2.840.10008.1.2.2";
  try {
    walk(offset, bytes.length, false);
    return undefined;
  } catch (problem) {
    return String((problem as Error).message);
  }

  /** Walks elements in [offset, end); inside an undefined-length item it stops after the item delimiter. */
  function walk(from: number, end: number, inUndefinedItem: boolean): number {
    let o = from;
    while (o < end) {
      if (o + 8 > end) throw new Error(`an element header at byte ${o} runs past the end of the file`);
      const group = view.getUint16(o, little), element = view.getUint16(o + 2, little);
      if (group === 0xfffe) {
        const length = view.getUint32(o + 4, little);
        if (element === 0xe00d) return o + 8; // item delimiter
        if (element === 0xe0dd) return o + 8; // sequence delimiter (closes the caller's sequence)
        throw new Error(`an unexpected item tag (FFFE,${hex(element)}) at byte ${o} (length ${length})`);
      }
      let vr = "";
      let length: number;
      let start: number;
      if (explicit) {
        vr = String.fromCharCode(bytes[o + 4]!, bytes[o + 5]!);
        if (LONG_VRS.has(vr)) {
          if (o + 12 > end) throw new Error(`the header of (${hex(group)},${hex(element)}) runs past the end of the file`);
          length = view.getUint32(o + 8, little);
          start = o + 12;
        } else {
          length = view.getUint16(o + 6, little);
          start = o + 8;
        }
      } else {
        length = view.getUint32(o + 4, little);
        start = o + 8;
      }
      if (length === UNDEFINED) {
        o = items(start, end, true); // a sequence, or encapsulated pixel data: items up to the sequence delimiter
        continue;
      }
      if (start + length > end) {
        throw new Error(`element (${hex(group)},${hex(element)}) declares ${length} bytes at byte ${start}, but only ${end - start} remain`);
      }
      if (vr === "SQ") items(start, start + length, false);
      o = start + length;
    }
    if (inUndefinedItem) throw new Error("an item without its delimiter runs to the end of the file");
    return o;
  }

  /** Walks the items of a sequence in [from, end), or up to its delimiter when `delimited`; returns where it ends. */
  function items(from: number, end: number, delimited: boolean): number {
    let o = from;
    while (o < end) {
      if (o + 8 > end) throw new Error(`an item header at byte ${o} runs past the end of the file`);
      const group = view.getUint16(o, little), element = view.getUint16(o + 2, little), length = view.getUint32(o + 4, little);
      if (group !== 0xfffe) throw new Error(`expected an item at byte ${o}, found (${hex(group)},${hex(element)})`);
      if (element === 0xe0dd) return o + 8;
      if (element !== 0xe000) throw new Error(`an unexpected item tag (FFFE,${hex(element)}) at byte ${o}`);
      if (length === UNDEFINED) {
        o = walk(o + 8, end, true);
        continue;
      }
      if (o + 8 + length > end) throw new Error(`an item at byte ${o} declares ${length} bytes, but only ${end - o - 8} remain`);
      o = o + 8 + length; // defined-length item content (a dataset, or a pixel data fragment) fits
    }
    if (delimited) throw new Error("a sequence without its delimiter runs to the end of the file");
    return o;
  }
}

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, "0");
}
