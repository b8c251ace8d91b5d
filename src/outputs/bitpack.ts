/**
 * BINARY segmentation pixel data: one bit per pixel, least significant bit first, frames concatenated
 * with no padding between them (a frame may start mid-byte when Rows×Columns is not a multiple of 8);
 * only the end is padded, to an even length.
 * Frame f holds pixel p of `labels` slice `frames[f].slice` set where the label equals `frames[f].value`.
 */
export function packBinaryFrames(
  labels: Uint8Array,
  pixelsPerFrame: number,
  frames: readonly { slice: number; value: number }[],
): Uint8Array {
  const totalBits = pixelsPerFrame * frames.length;
  const bytes = Math.ceil(totalBits / 8);
  const out = new Uint8Array(bytes + (bytes % 2));
  let bit = 0;
  for (const { slice, value } of frames) {
    const base = slice * pixelsPerFrame;
    for (let p = 0; p < pixelsPerFrame; p++, bit++) {
      if (labels[base + p] === value) out[bit >> 3]! |= 1 << (bit & 7);
    }
  }
  return out;
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
