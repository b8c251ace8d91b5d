import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import type { ParsedDicom } from "../../src/dicom/dataset.js";
import { parsePart10, pixelDataOf, readPart10Lazily } from "../../src/dicom/dataset.js";
import { decodeRle, encapsulatedFrames, type PixelDecoders } from "../../src/dicom/pixelDecoders.js";
import { DelineateError, type ErrorCode } from "../../src/errors.js";
import { readAt } from "../../src/fileRange.js";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { decodeSlice, expandFrames } from "../../src/volume/slicePixels.js";
import { tempDir } from "../helpers/tools.js";

/** The error `fn` throws, checked to be a DelineateError with this code and a message matching `pattern`. */
function typed(fn: () => unknown, code: ErrorCode, pattern: RegExp): DelineateError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown instanceof DelineateError, `threw ${String(thrown)}, not a DelineateError`);
  assert.equal(thrown.code, code, thrown.message);
  assert.match(thrown.message, pattern);
  return thrown;
}

const RLE = "1.2.840.10008.1.2.5";
const layout = { rows: 2, columns: 2, bitsAllocated: 8, bitsStored: 8, samplesPerPixel: 1 };

/** An RLE frame of one segment: a 64-byte header, then `segment`. */
function rleFrame(segment: number[], segments = 1): Uint8Array {
  const out = new Uint8Array(64 + segment.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, segments, true);
  view.setUint32(4, 64, true);
  out.set(segment, 64);
  return out;
}

/** One RLE-compressed 2×2 8-bit slice, as parsePart10 would give it. */
function rleSlice(frame: Uint8Array): ParsedDicom {
  return {
    transferSyntaxUID: RLE,
    mediaStorageSOPClassUID: "1.2.840.10008.5.1.4.1.1.2",
    dataset: {
      SOPInstanceUID: "1.2.3.4",
      Rows: 2,
      Columns: 2,
      SamplesPerPixel: 1,
      BitsAllocated: 8,
      BitsStored: 8,
      PixelRepresentation: 0,
      PixelData: [frame.slice().buffer],
    },
  };
}

const rleOnly: PixelDecoders = { decode: (_ts, encoded, l) => decodeRle(encoded, l) };

describe("typed failures of DICOM reading", () => {
  it("bytes dcmjs cannot read: DLN_ERR_DICOM_PARSE with dcmjs's message, its error the cause", () => {
    const e = typed(() => parsePart10(new TextEncoder().encode("not DICOM")), "DLN_ERR_DICOM_PARSE", /header/);
    assert.ok(e.cause instanceof Error, "dcmjs's own error kept");
    assert.equal(e.message, (e.cause as Error).message);
  });

  it("a declared length past the end of the bytes: DLN_ERR_DICOM_PARSE naming the element", () => {
    const b = new Uint8Array(300);
    b.set([0x44, 0x49, 0x43, 0x4d], 128); // DICM
    b.set([2, 0, 0x10, 0, 0x55, 0x49, 4, 0, 0x31, 0x2e, 0x32, 0], 132); // (0002,0010) UI "1.2"
    b.set([0x08, 0, 0x60, 0, 0x43, 0x53, 0xff, 0x00], 144); // (0008,0060) CS declaring 255 bytes
    typed(() => parsePart10(b), "DLN_ERR_DICOM_PARSE", /element \(0008,0060\) declares 255 bytes/);
  });

  it("a file shorter than a read: DLN_ERR_INTERNAL from readAt; DLN_ERR_DICOM_PARSE naming the file from the reader", () => {
    const dir = tempDir("errors-");
    const short = path.join(dir, "short.bin");
    writeFileSync(short, new Uint8Array(10));
    const fd = openSync(short, "r");
    try {
      const e = typed(() => readAt(fd, 4, 20), "DLN_ERR_INTERNAL", /ends at byte 10, before the 20 bytes/);
      assert.deepEqual({ ...e.context }, { position: 4, length: 20 });
    } finally {
      closeSync(fd);
    }

    const [file] = writePhantomSeries(dir, {
      size: 300,
      slices: 1,
      pixelSpacing: 1,
      sliceSpacing: 1,
      patientName: "E^E",
      patientID: "E",
    }).files;
    const lazy = readPart10Lazily(file!);
    truncateSync(file!, readFileSync(file!).length - 1000);
    const e = typed(() => pixelDataOf(lazy), "DLN_ERR_DICOM_PARSE", /ends at byte/);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    assert.equal(e.context.file, file);
    assert.ok(e.cause instanceof DelineateError && e.cause.code === "DLN_ERR_INTERNAL", "readAt's error kept");
  });
});

describe("typed failures of pixel decoding", () => {
  it("RLE frames that make no sense: DLN_ERR_DICOM_DECODE saying what is wrong", () => {
    typed(() => decodeRle(new Uint8Array(10), layout), "DLN_ERR_DICOM_DECODE", /shorter than its 64-byte header/);
    typed(() => decodeRle(rleFrame([3, 1, 2, 3, 4], 2), layout), "DLN_ERR_DICOM_DECODE", /2 segments, 1 expected/);
    typed(() => decodeRle(rleFrame([1, 1, 2]), layout), "DLN_ERR_DICOM_DECODE", /decodes to 2 of 4 bytes/);
    assert.deepEqual([...decodeRle(rleFrame([3, 1, 2, 3, 4]), layout)], [1, 2, 3, 4]);
  });

  it("fragments that do not make the frames: DLN_ERR_DICOM_DECODE", () => {
    const fragments = [new Uint8Array([1, 2]).buffer, new Uint8Array([3, 4]).buffer, new Uint8Array([5, 6]).buffer];
    typed(() => encapsulatedFrames(fragments, 2), "DLN_ERR_DICOM_DECODE", /3 fragments that make 1 frames, not 2/);
  });

  it("a slice that cannot be decoded is refused naming the series and instance, the decoder's error its cause", () => {
    const out = new Float32Array(4);
    const e = typed(
      () => decodeSlice(rleSlice(rleFrame([1, 1, 2])), out, "1.2.3.100", rleOnly),
      "DLN_ERR_VOLUME_UNSUPPORTED",
      /^series 1\.2\.3\.100, instance 1\.2\.3\.4: transfer syntax 1\.2\.840\.10008\.1\.2\.5: RLE segment 1 decodes to 2 of 4 bytes/,
    );
    assert.deepEqual({ ...e.context }, { seriesInstanceUID: "1.2.3.100", sopInstanceUID: "1.2.3.4" });
    assert.ok(e.cause instanceof DelineateError && e.cause.code === "DLN_ERR_DICOM_DECODE");
    // a codec that throws something that is not an Error (Emscripten throws numbers): kept as the cause
    const pointer: PixelDecoders = {
      decode: () => {
        throw 5245112;
      },
    };
    const p = typed(
      () => decodeSlice(rleSlice(rleFrame([3, 1, 2, 3, 4])), out, "1.2.3.100", pointer),
      "DLN_ERR_VOLUME_UNSUPPORTED",
      /transfer syntax 1\.2\.840\.10008\.1\.2\.5: 5245112/,
    );
    assert.equal(p.cause, 5245112);
    decodeSlice(rleSlice(rleFrame([3, 1, 2, 3, 4])), out, "1.2.3.100", rleOnly);
    assert.deepEqual([...out], [1, 2, 3, 4]);
  });

  it("an Enhanced instance whose fragments do not make its frames: each frame refused with that reason", () => {
    const frames = 2;
    const enhanced = rleSlice(new Uint8Array(0));
    enhanced.dataset = {
      ...enhanced.dataset,
      NumberOfFrames: frames,
      SharedFunctionalGroupsSequence: [{ PixelMeasuresSequence: [{ PixelSpacing: [1, 1] }] }],
      PerFrameFunctionalGroupsSequence: Array.from({ length: frames }, (_, k) => ({
        PlanePositionSequence: [{ ImagePositionPatient: [0, 0, k] }],
        PlaneOrientationSequence: [{ ImageOrientationPatient: [1, 0, 0, 0, 1, 0] }],
      })),
      PixelData: [new Uint8Array([1, 2]).buffer, new Uint8Array([3, 4]).buffer, new Uint8Array([5, 6]).buffer],
    };
    const split = expandFrames(enhanced);
    assert.equal(split.length, frames);
    for (const frame of split) {
      const e = typed(
        () => decodeSlice(frame, new Float32Array(4), "1.2.3.100", rleOnly),
        "DLN_ERR_VOLUME_UNSUPPORTED",
        /instance 1\.2\.3\.4: its pixel data cannot be read: encapsulated pixel data has 3 fragments that make 1 frames, not 2/,
      );
      assert.ok(e.cause instanceof DelineateError && e.cause.code === "DLN_ERR_DICOM_DECODE");
    }
  });
});
