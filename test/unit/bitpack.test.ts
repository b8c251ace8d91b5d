import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { packBinaryFrames, unpackBinaryFrame } from "../../src/outputs/bitpack.js";

describe("SEG bit packing", () => {
  it("packs least significant bit first, frames back to back, padded to even length only at the end", () => {
    // 3×3 frames (9 bits, not a multiple of 8): frame 0 = label 1 on the diagonal, frame 1 = label 2 in the last row
    const labels = new Uint8Array([1, 0, 0, 0, 1, 0, 0, 0, 1, /* slice 1 */ 0, 0, 0, 0, 0, 0, 2, 2, 2]);
    const packed = packBinaryFrames(labels, 9, [
      { slice: 0, value: 1 },
      { slice: 1, value: 2 },
    ]);
    // bits 0,4,8 (frame 0) and 9+6,9+7,9+8 = 15,16,17 (frame 1): byte0 = 0b00010001, byte1 = 0b10000001, byte2 = 0b00000011
    assert.deepEqual(Array.from(packed), [0x11, 0x81, 0x03, 0x00]);
  });
  it("packs slices with one frame each, Rows×Columns a multiple of 8, bit for bit as the standard lays them out", () => {
    // every label value on each slice (the frame's own value, others, 0), runs and lone pixels, and a slice whose
    // labels start mid-word (a view into a larger buffer)
    const [w, h, slices] = [8, 5, 4];
    const plane = w * h;
    const values = [1, 7, 255, 128];
    for (const offset of [0, 1, 4]) {
      const buffer = new Uint8Array(plane * slices + offset);
      const labels = buffer.subarray(offset);
      labels.forEach((_, i) => {
        const r = (i * 2654435761) >>> 27; // 0..31
        labels[i] = r < 12 ? 0 : r < 24 ? values[Math.floor(i / plane)]! : r;
      });
      // four background pixels, then four of the frame's: a byte whose first word is zero
      labels.fill(0, 0, 4).fill(values[0]!, 4, 8);
      const frames = values.map((value, slice) => ({ slice, value }));
      const packed = packBinaryFrames(labels, plane, frames);
      const want = new Uint8Array(packed.length);
      frames.forEach(({ slice, value }, f) => {
        for (let p = 0; p < plane; p++) {
          const bit = f * plane + p;
          if (labels[slice * plane + p] === value) want[bit >> 3]! |= 1 << (bit & 7);
        }
      });
      assert.deepEqual(packed, want, `labels at byte offset ${offset}`);
    }
  });
  it("round-trips several segments when Rows×Columns is not a multiple of 8", () => {
    const [w, h, slices] = [13, 7, 5];
    const plane = w * h;
    const labels = new Uint8Array(plane * slices).map((_, i) => (i * 7919) % 4); // labels 0..3, every pattern
    const frames = [1, 2, 3].flatMap((value) => [0, 1, 2, 3, 4].map((slice) => ({ slice, value })));
    const packed = packBinaryFrames(labels, plane, frames);
    assert.equal(packed.length, Math.ceil((plane * frames.length) / 8) + (Math.ceil((plane * frames.length) / 8) % 2));
    frames.forEach(({ slice, value }, f) => {
      const got = unpackBinaryFrame(packed, plane, f);
      const want = labels.subarray(slice * plane, (slice + 1) * plane).map((l) => (l === value ? 1 : 0));
      assert.deepEqual(got, want, `frame ${f} (segment ${value}, slice ${slice})`);
    });
  });
});
