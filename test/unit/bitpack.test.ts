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
