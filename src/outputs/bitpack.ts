/**
 * BINARY segmentation pixel data: one bit per pixel, least significant bit first, frames concatenated
 * with no padding between them (a frame may start mid-byte when Rows×Columns is not a multiple of 8);
 * only the end is padded, to an even length.
 * Frame f holds pixel p of `labels` slice `frames[f].slice` set where the label equals `frames[f].value`. Written
 * into `out` (zeroed, packedBytes long) when given: the file's own buffer, so the frames are never copied.
 */
export function packBinaryFrames(
  labels: Uint8Array,
  pixelsPerFrame: number,
  frames: readonly { slice: number; value: number }[],
  out: Uint8Array = new Uint8Array(packedBytes(pixelsPerFrame, frames.length)),
): Uint8Array {
  const bySlice = framesBySlice(frames);
  if (!bySlice) {
    // a frame of value 0 (every unlabelled pixel) or two frames of one slice and value: frame by frame
    let bit = 0;
    for (const { slice, value } of frames) {
      const base = slice * pixelsPerFrame;
      for (let p = 0; p < pixelsPerFrame; p++, bit++) {
        if (labels[base + p] === value) out[bit >> 3]! |= 1 << (bit & 7);
      }
    }
    return out;
  }
  // one pass over each slice for all of its frames: a pixel's label value picks its frame (or none), whose bit is set
  const frameOf = new Int32Array(256);
  for (const [slice, list] of bySlice) {
    if (list.length === 1 && packSliceByWords(labels, pixelsPerFrame, slice, list[0]!, out)) continue;
    frameOf.fill(-1);
    for (const { value, index } of list) frameOf[value] = index;
    const base = slice * pixelsPerFrame;
    // four pixels at a time where all are background: their word is zero
    const words =
      (labels.byteOffset + base) % 4 === 0
        ? new Uint32Array(labels.buffer, labels.byteOffset + base, pixelsPerFrame >> 2)
        : undefined;
    for (let p = 0; p < pixelsPerFrame; p++) {
      if (words && (p & 3) === 0 && p >> 2 < words.length && words[p >> 2] === 0) {
        p += 3;
        continue;
      }
      const v = labels[base + p]!;
      if (v === 0) continue;
      const f = frameOf[v]!;
      if (f < 0) continue;
      const bit = f * pixelsPerFrame + p;
      out[bit >> 3]! |= 1 << (bit & 7);
    }
  }
  return out;
}

/**
 * A slice with one frame (one label on it: the body outline, a single organ) packed a byte at a time from two
 * words of labels: each label byte equal to the frame's value becomes its bit. False, doing nothing, unless the
 * frame starts on a byte and the slice's labels on a word (Rows×Columns a multiple of 8, as in 512×512).
 */
function packSliceByWords(
  labels: Uint8Array,
  pixelsPerFrame: number,
  slice: number,
  frame: { value: number; index: number },
  out: Uint8Array,
): boolean {
  const base = labels.byteOffset + slice * pixelsPerFrame;
  if (pixelsPerFrame % 8 !== 0 || base % 4 !== 0) return false;
  const words = new Uint32Array(labels.buffer, base, pixelsPerFrame >> 2);
  const value = Math.imul(frame.value, 0x01010101) >>> 0;
  let o = (frame.index * pixelsPerFrame) >> 3;
  for (let w = 0; w < words.length; w += 2, o++) {
    const a = words[w]!,
      b = words[w + 1]!;
    if ((a | b) === 0) continue; // background: the bits are already 0 (value is never 0 here)
    out[o]! |= equalBytes(a ^ value) | (equalBytes(b ^ value) << 4);
  }
  return true;
}

/** Bit i (0–3) set where byte i of `x` is zero, byte 0 the lowest (the first label in memory, little-endian). */
function equalBytes(x: number): number {
  // high bit of each byte set where the byte is not zero (no carry crosses a byte: each low part is at most 0x7f)
  const nonzero = (((x & 0x7f7f7f7f) + 0x7f7f7f7f) | x) & 0x80808080;
  const zero = ~nonzero & 0x80808080;
  // the four flags, at bits 7, 15, 23, 31, gathered into bits 28–31 by one multiply (no two products meet)
  return Math.imul(zero >>> 7, 0x10204080) >>> 28;
}

/** Bytes of `frames` bit-packed frames of `pixelsPerFrame` pixels, padded to an even length. */
export function packedBytes(pixelsPerFrame: number, frames: number): number {
  const bytes = Math.ceil((pixelsPerFrame * frames) / 8);
  return bytes + (bytes % 2);
}

/** Frames grouped by slice, each with its index; undefined when a frame has value 0 or repeats a slice and value. */
function framesBySlice(
  frames: readonly { slice: number; value: number }[],
): Map<number, { value: number; index: number }[]> | undefined {
  const bySlice = new Map<number, { value: number; index: number }[]>();
  for (const [index, { slice, value }] of frames.entries()) {
    if (value < 1 || value > 255) return undefined;
    const list = bySlice.get(slice) ?? [];
    if (list.some((f) => f.value === value)) return undefined;
    list.push({ value, index });
    bySlice.set(slice, list);
  }
  return bySlice;
}

/** The inverse, for tests and readers: frame f as 0/1 bytes. */
export function unpackBinaryFrame(packed: Uint8Array, pixelsPerFrame: number, frame: number): Uint8Array {
  const out = new Uint8Array(pixelsPerFrame);
  const start = frame * pixelsPerFrame;
  for (let p = 0; p < pixelsPerFrame; p++) {
    const bit = start + p;
    out[p] = (packed[bit >> 3]! >> (bit & 7)) & 1;
  }
  return out;
}
