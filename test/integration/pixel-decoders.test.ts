import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { before, describe, it } from "node:test";
import { type ParsedDicom, parsePart10 } from "../../src/dicom/dataset.js";
import { loadPixelDecoders, type PixelDecoders } from "../../src/dicom/pixelDecoders.js";
import { DelineateError } from "../../src/errors.js";
import { decodeSlice, framePixelData } from "../../src/volume/slicePixels.js";
import { exec, sharedData, tempDir } from "../helpers/tools.js";

const read = (file: string) => parsePart10(new Uint8Array(readFileSync(file)));

/** A multi-frame instance without functional groups as single-frame instances, rescale left out (stored values). */
function framesOf(p: ParsedDicom): ParsedDicom[] {
  const frames = Number(p.dataset.NumberOfFrames ?? 1);
  const data = framePixelData(p, frames);
  assert.equal(data.length, frames, "every frame's pixel data found");
  return data.map((buf) => ({
    ...p,
    dataset: { ...p.dataset, NumberOfFrames: 1, RescaleSlope: 1, RescaleIntercept: 0, PixelData: [buf] },
  }));
}

/** Every pixel of one single-frame instance, rescaled, through the volume stage's own slice decoder. */
function pixels(p: ParsedDicom, decoders: PixelDecoders): Float32Array {
  const out = new Float32Array(Number(p.dataset.Rows) * Number(p.dataset.Columns));
  decodeSlice(p, out, "test", decoders);
  return out;
}

function differing(a: ArrayLike<number>, b: ArrayLike<number>): { count: number; max: number } {
  assert.equal(a.length, b.length);
  let count = 0,
    max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d) count++, (max = Math.max(max, d));
  }
  return { count, max };
}

describe("local pixel decoders (convert and segment on a folder; instances pushed to the node)", () => {
  let decoders: PixelDecoders;
  before(async () => {
    decoders = await loadPixelDecoders();
  });

  const wg04 = sharedData("wg04-compression");
  const lossless = {
    J2KR: "JPEG 2000 lossless",
    JLSL: "JPEG-LS lossless",
    JPLL: "JPEG lossless (process 14, SV1)",
    RLE: "RLE lossless",
  };
  for (const [folder, name] of Object.entries(lossless)) {
    it(`${name}: the six NEMA WG04 images (item 5; CT and MR, signed and unsigned, 12 and 16 bits, 512² and 1024²) equal the uncompressed originals exactly`, {
      skip: wg04.skip,
    }, () => {
      for (const file of readdirSync(path.join(wg04.path, folder))) {
        const ref = read(path.join(wg04.path, "REF", `${file.split("_")[0]}_UNC`));
        const got = read(path.join(wg04.path, folder, file));
        assert.notEqual(got.transferSyntaxUID, ref.transferSyntaxUID);
        const d = differing(pixels(got, decoders), pixels(ref, decoders));
        assert.equal(d.count, 0, `${file}: ${d.count} pixels differ (by up to ${d.max})`);
      }
    });
  }

  it("lossy JPEG 2000 and near-lossless JPEG-LS decode to the right size, close to the originals (item 5)", {
    skip: wg04.skip,
  }, () => {
    for (const folder of ["J2KI", "JLSN"]) {
      for (const file of readdirSync(path.join(wg04.path, folder))) {
        const ref = pixels(read(path.join(wg04.path, "REF", `${file.split("_")[0]}_UNC`)), decoders);
        const got = pixels(read(path.join(wg04.path, folder, file)), decoders);
        let sum = 0,
          lo = Infinity,
          hi = -Infinity;
        for (let i = 0; i < ref.length; i++)
          (sum += Math.abs(got[i]! - ref[i]!)), (lo = Math.min(lo, ref[i]!)), (hi = Math.max(hi, ref[i]!));
        // lossy: not equal, but a wrong sign, byte order or bit depth would put the mean error near half the range
        assert.ok(
          sum / ref.length < 0.05 * (hi - lo),
          `${folder}/${file}: mean error ${sum / ref.length} over a range of ${hi - lo}`,
        );
      }
    }
  });

  it("refuses 12-bit lossy JPEG (process 4) by name, naming the series and instance", { skip: wg04.skip }, () => {
    const p = read(path.join(wg04.path, "JPLY", "MR1_JPLY"));
    assert.throws(
      () => pixels(p, decoders),
      (e: Error) =>
        /instance [0-9.]+: transfer syntax 1\.2\.840\.10008\.1\.2\.4\.51: JPEG extended with 12-bit samples \(process 4\) is not decoded here/.test(
          e.message,
        ),
    );
  });

  const variants = sharedData("pydicom-variants");
  it("big-endian, deflated, implicit-VR, and single- and multi-frame RLE / JPEG lossless / JPEG 2000 / JPEG-LS files (item 6) equal GDCM's decoding", {
    skip: variants.skip,
    timeout: 60_000,
  }, async () => {
    const files = [
      "MR_small_bigendian.dcm",
      "MR_small_implicit.dcm",
      "MR_small_RLE.dcm",
      "MR_small_jp2klossless.dcm",
      "MR_small_jpeg_ls_lossless.dcm",
      "image_dfl.dcm",
      "JPEG-LL.dcm",
      "JPGLosslessP14SV1_1s_1f_8b.dcm",
      "emri_small_RLE.dcm",
      "emri_small_jpeg_2k_lossless.dcm",
      "emri_small_jpeg_ls_lossless.dcm",
      "emri_small_big_endian.dcm",
    ];
    const work = tempDir("decoders-");
    for (const file of files) {
      // the reference: GDCM (its own OpenJPEG, CharLS and IJG builds) writes the pixels uncompressed, little-endian
      await exec("gdcmconv", ["--raw", path.join(variants.path, file), path.join(work, file)]);
      const ref = read(path.join(work, file));
      assert.ok(
        ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"].includes(ref.transferSyntaxUID),
        `${file}: GDCM wrote ${ref.transferSyntaxUID}`,
      );
      const ours = framesOf(read(path.join(variants.path, file))).flatMap((f) => [...pixels(f, decoders)]);
      const expected = framesOf(ref).flatMap((f) => [...pixels(f, decoders)]);
      const d = differing(ours, expected);
      assert.equal(d.count, 0, `${file}: ${d.count} of ${ours.length} pixels differ (by up to ${d.max})`);
    }
  });

  it("a cut JPEG 2000 codestream is a clear error naming the instance, not a crash (item 6)", {
    skip: variants.skip,
  }, () => {
    const [frame] = framesOf(read(path.join(variants.path, "emri_small_jpeg_2k_lossless.dcm")));
    const bytes = new Uint8Array((frame!.dataset.PixelData as ArrayBuffer[])[0]!);
    const cut = { ...frame!, dataset: { ...frame!.dataset, PixelData: [bytes.slice(0, bytes.length >> 1).buffer] } };
    assert.throws(
      () => pixels(cut, decoders),
      (e: Error) =>
        /^series test, instance [0-9.]+: transfer syntax 1\.2\.840\.10008\.1\.2\.4\.90: ./.test(e.message) &&
        e instanceof DelineateError &&
        e.code === "DLN_ERR_VOLUME_UNSUPPORTED" &&
        e.cause instanceof DelineateError &&
        e.cause.code === "DLN_ERR_DICOM_DECODE",
    );
  });

  it("a codestream a codec throws on: DLN_ERR_DICOM_DECODE, what the codec threw kept as the cause", () => {
    const layout = { rows: 8, columns: 8, bitsAllocated: 8, bitsStored: 8, samplesPerPixel: 1 };
    const garbage = new Uint8Array(64).fill(7);
    // jpeg-lossless-decoder-js throws an Error; the Emscripten builds (CharLS, libjpeg-turbo) throw a bare number
    for (const [ts, message, cause] of [
      ["1.2.840.10008.1.2.4.70", /Not a JPEG file/, (c: unknown) => c instanceof Error],
      ["1.2.840.10008.1.2.4.80", /the decoder failed \(\d+\): corrupt or truncated codestream/, Number.isInteger],
      ["1.2.840.10008.1.2.4.50", /the decoder failed \(\d+\): corrupt or truncated codestream/, Number.isInteger],
    ] as const) {
      assert.throws(
        () => decoders.decode(ts, garbage, layout),
        (e: unknown) =>
          e instanceof DelineateError && e.code === "DLN_ERR_DICOM_DECODE" && message.test(e.message) && cause(e.cause),
        ts,
      );
    }
  });
});
