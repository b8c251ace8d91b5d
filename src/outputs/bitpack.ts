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
