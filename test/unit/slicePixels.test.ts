import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ParsedDicom } from "../../src/dicom/dataset.js";
import { TransferSyntax } from "../../src/dicom/uids.js";
import { decodeSlice, decodeSliceInt16 } from "../../src/volume/slicePixels.js";

/** One native slice of `stored` values (16 bits allocated unless they come as bytes). */
function slice(
  stored: Uint16Array | Uint8Array,
  rows: number,
  columns: number,
  pixel: { bitsStored: number; signed: boolean; intercept: number; slope?: number },
): ParsedDicom {
  return {
    transferSyntaxUID: TransferSyntax.ExplicitVRLittleEndian,
    mediaStorageSOPClassUID: "",
    dataset: {
      SOPInstanceUID: "1.2.3",
      Rows: rows,
      Columns: columns,
      SamplesPerPixel: 1,
      BitsAllocated: stored instanceof Uint8Array ? 8 : 16,
      BitsStored: pixel.bitsStored,
      PixelRepresentation: pixel.signed ? 1 : 0,
      RescaleIntercept: pixel.intercept,
      RescaleSlope: pixel.slope ?? 1,
      PixelData: [stored.slice().buffer],
    },
  };
}

/** The real-world value of each stored one, by the standard's rule (high bits ignored, sign from BitsStored). */
function expected(stored: ArrayLike<number>, bitsStored: number, signed: boolean, intercept: number): number[] {
  return Array.from(stored, (raw) => {
    let v = raw % 2 ** bitsStored;
    if (signed && v >= 2 ** (bitsStored - 1)) v -= 2 ** bitsStored;
    return v + intercept;
  });
}

/** Stored values with every bit pattern of interest: extremes, and garbage above BitsStored. */
function storedValues(n: number, bitsStored: number): Uint16Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 2654435761) >>> 16; // all 16 bits used
  out[0] = 0;
  out[1] = 2 ** bitsStored - 1;
  out[2] = 2 ** (bitsStored - 1);
  return out;
}

describe("decodeSliceInt16: the rescaled values decodeSlice gives, straight to int16", () => {
  for (const [rows, columns] of [
    [4, 4],
    [5, 3], // an odd count: the last value is not one of a pair
  ] as const) {
    for (const pixel of [
      { bitsStored: 12, signed: false, intercept: -1024 }, // CT: no value can leave int16
      { bitsStored: 12, signed: true, intercept: 100 },
      { bitsStored: 16, signed: true, intercept: 0 }, // the stored bits are the values
      { bitsStored: 15, signed: false, intercept: -16384 },
      { bitsStored: 16, signed: false, intercept: -32768 },
    ]) {
      it(`${rows}×${columns}, ${pixel.bitsStored} bits stored, ${pixel.signed ? "signed" : "unsigned"}, intercept ${pixel.intercept}`, () => {
        const stored = storedValues(rows * columns, pixel.bitsStored);
        const inst = slice(stored, rows, columns, pixel);
        const asInt16 = new Int16Array(rows * columns);
        assert.equal(decodeSliceInt16(inst, asInt16, "1.2"), true);
        const want = expected(stored, pixel.bitsStored, pixel.signed, pixel.intercept);
        assert.deepEqual(Array.from(asInt16), want);
        const asFloat = new Float32Array(rows * columns);
        decodeSlice(inst, asFloat, "1.2");
        assert.deepEqual(Array.from(asFloat), want);
      });
    }
  }

  it("reads 8-bit stored values", () => {
    const stored = new Uint8Array([0, 1, 127, 128, 255, 3]);
    const asInt16 = new Int16Array(6);
    assert.equal(
      decodeSliceInt16(slice(stored, 2, 3, { bitsStored: 8, signed: true, intercept: 5 }), asInt16, "1"),
      true,
    );
    assert.deepEqual(Array.from(asInt16), expected(stored, 8, true, 5));
  });

  it("decodeSlice: values past int16 (16 bits unsigned, a large intercept) and a slope still come out whole", () => {
    const stored = storedValues(15, 16);
    for (const intercept of [0, -1024, 20000]) {
      const asFloat = new Float32Array(15);
      decodeSlice(slice(stored, 3, 5, { bitsStored: 16, signed: false, intercept }), asFloat, "1");
      assert.deepEqual(Array.from(asFloat), expected(stored, 16, false, intercept));
    }
    const asFloat = new Float32Array(15);
    decodeSlice(slice(stored, 3, 5, { bitsStored: 12, signed: true, intercept: -1, slope: 0.5 }), asFloat, "1");
    assert.deepEqual(
      Array.from(asFloat),
      expected(stored, 12, true, 0).map((v) => v * 0.5 - 1),
    );
  });

  it("answers false when a value does not fit int16, or is not an integer", () => {
    const big = new Uint16Array([1, 2, 40000, 4]);
    const inst = slice(big, 2, 2, { bitsStored: 16, signed: false, intercept: 0 });
    assert.equal(decodeSliceInt16(inst, new Int16Array(4), "1"), false);
    const halves = slice(new Uint16Array([1, 2, 3, 4]), 2, 2, {
      bitsStored: 12,
      signed: false,
      intercept: 0,
      slope: 0.5,
    });
    assert.equal(decodeSliceInt16(halves, new Int16Array(4), "1"), false);
  });
});
