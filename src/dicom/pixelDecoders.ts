import { createRequire } from "node:module";
import type { Decoder as LosslessJpegDecoder } from "jpeg-lossless-decoder-js";
import { DelineateError } from "../errors.js";
import { TransferSyntax } from "./uids.js";

/**
 * Local decoders for compressed pixel data, for `convert` and `segment` on a folder and for instances pushed to the
 * node (a PACS transcodes for us on WADO-RS). Maintained decoders from npm: OpenJPEG, CharLS and libjpeg-turbo as
 * Cornerstone builds them for WebAssembly, and jpeg-lossless-decoder-js for JPEG lossless (process 14). RLE Lossless
 * is decoded here: it is a few lines of PackBits, and the one npm package for it (dicom-rle) is unmaintained.
 */

export interface FrameLayout {
  rows: number;
  columns: number;
  bitsAllocated: number;
  bitsStored: number;
  samplesPerPixel: number;
}

/** Stored pixel values of one frame, one element per sample, in the file's bit depth (unmasked, not sign-extended). */
export type StoredFrame = Uint8Array | Uint16Array;

export interface PixelDecoders {
  /**
   * @throws DelineateError DLN_ERR_DICOM_DECODE naming the codec's complaint (its own error the cause), or
   * DLN_ERR_VOLUME_UNSUPPORTED for a transfer syntax or bit depth not decoded here.
   */
  decode(transferSyntaxUID: string, encoded: Uint8Array, layout: FrameLayout): StoredFrame;
}

const NATIVE = new Set<string>([
  TransferSyntax.ImplicitVRLittleEndian,
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.DeflatedExplicitVRLittleEndian,
  TransferSyntax.ExplicitVRBigEndian,
]);

export function isEncapsulated(transferSyntaxUID: string): boolean {
  return !NATIVE.has(transferSyntaxUID);
}

/** The Emscripten decoder classes share one shape. */
interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number };
  delete(): void;
}
type WasmModule = Record<string, new () => WasmDecoder>;

/** Loads the WebAssembly decoders once; `decode` is synchronous after that. */
export async function loadPixelDecoders(): Promise<PixelDecoders> {
  const require = createRequire(import.meta.url);
  // OpenJPEG prints progress lines through Emscripten's print: keep them off our stdout (convert lists files there)
  const quiet = { print: () => {}, printErr: () => {} };
  const load = (name: string) => (require(name) as (options: object) => Promise<WasmModule>)(quiet);
  // loaded here, not with this module: convert imports it for every folder, and it costs ~40 ms of CPU to load
  const { Decoder } = require("jpeg-lossless-decoder-js") as { Decoder: typeof LosslessJpegDecoder };
  const decodeLosslessJpeg = (encoded: Uint8Array, layout: FrameLayout) => losslessJpeg(Decoder, encoded, layout);
  const [openjpeg, charls, turbo] = await Promise.all([
    load("@cornerstonejs/codec-openjpeg/decodewasmjs"),
    load("@cornerstonejs/codec-charls/decodewasmjs"),
    load("@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs"),
  ]);
  const wasm = (module: WasmModule, cls: string) => (encoded: Uint8Array, layout: FrameLayout) =>
    decodeWasm(new module[cls]!(), encoded, layout);
  const byTs: Record<string, (encoded: Uint8Array, layout: FrameLayout) => StoredFrame> = {
    [TransferSyntax.JPEGBaseline8Bit]: wasm(turbo, "JPEGDecoder"),
    [TransferSyntax.JPEGExtended12Bit]: wasm(turbo, "JPEGDecoder"),
    [TransferSyntax.JPEGLossless]: decodeLosslessJpeg,
    [TransferSyntax.JPEGLosslessSV1]: decodeLosslessJpeg,
    [TransferSyntax.JPEGLSLossless]: wasm(charls, "JpegLSDecoder"),
    [TransferSyntax.JPEGLSNearLossless]: wasm(charls, "JpegLSDecoder"),
    [TransferSyntax.JPEG2000Lossless]: wasm(openjpeg, "J2KDecoder"),
    [TransferSyntax.JPEG2000]: wasm(openjpeg, "J2KDecoder"),
    [TransferSyntax.RLELossless]: decodeRle,
  };
  return {
    decode(transferSyntaxUID, encoded, layout) {
      const decode = byTs[transferSyntaxUID];
      if (!decode)
        throw new DelineateError(
          "DLN_ERR_VOLUME_UNSUPPORTED",
          `transfer syntax ${transferSyntaxUID} has no decoder here`,
          { transferSyntaxUID },
        );
      if (transferSyntaxUID === TransferSyntax.JPEGExtended12Bit && layout.bitsStored > 8) {
        throw new DelineateError(
          "DLN_ERR_VOLUME_UNSUPPORTED",
          "JPEG extended with 12-bit samples (process 4) is not decoded here (libjpeg-turbo's 8-bit build)",
          { transferSyntaxUID },
        );
      }
      return decode(encoded, layout);
    },
  };
}

function decodeWasm(decoder: WasmDecoder, encoded: Uint8Array, layout: FrameLayout): StoredFrame {
  try {
    decoder.getEncodedBuffer(encoded.length).set(encoded);
    decoder.decode();
    const info = decoder.getFrameInfo();
    if (
      info.width !== layout.columns ||
      info.height !== layout.rows ||
      info.componentCount !== layout.samplesPerPixel
    ) {
      throw corrupt(
        `the codestream is ${info.width}×${info.height}×${info.componentCount}, the header says ${layout.columns}×${layout.rows}×${layout.samplesPerPixel}`,
      );
    }
    // a view into the decoder's WebAssembly memory: copy it out before the decoder is deleted
    const bytes = decoder.getDecodedBuffer().slice();
    return info.bitsPerSample > 8 ? new Uint16Array(bytes.buffer, 0, bytes.byteLength >> 1) : bytes;
  } catch (e) {
    if (e instanceof DelineateError) throw e;
    // Emscripten throws a bare pointer (a number) for C++ exceptions: the codec's own message, when there is one
    throw corrupt(
      e instanceof Error ? e.message : `the decoder failed (${String(e)}): corrupt or truncated codestream`,
      e,
    );
  } finally {
    decoder.delete();
  }
}

/**
 * jpeg-lossless-decoder-js 2.1.2 takes the end-of-image marker for a marker inside the scan when the last pixel's
 * Huffman code ends in the byte before it, and leaves that pixel 0 (WG04 CT2 lost its last pixel so). Handing it
 * the codestream with the marker replaced by zero bytes lets it finish the last code; it stops at the last pixel.
 */
function losslessJpeg(Decoder: typeof LosslessJpegDecoder, encoded: Uint8Array, layout: FrameLayout): StoredFrame {
  const bytesPerSample = layout.bitsAllocated > 8 ? 2 : 1;
  // the marker is within the last few bytes: after it, at most the padding to an even length (0 or FF)
  let eoi = encoded.byteLength - 2;
  while (eoi > encoded.byteLength - 8 && !(encoded[eoi] === 0xff && encoded[eoi + 1] === 0xd9)) eoi--;
  const end = encoded[eoi] === 0xff && encoded[eoi + 1] === 0xd9 ? eoi : encoded.byteLength;
  const stream = new Uint8Array(end + 8);
  stream.set(encoded.subarray(0, end));
  let out: ReturnType<LosslessJpegDecoder["decode"]>;
  try {
    out = new Decoder().decode(stream.buffer, 0, stream.byteLength, bytesPerSample);
  } catch (e) {
    throw corrupt(e instanceof Error ? e.message : `the decoder failed (${String(e)})`, e);
  }
  return bytesPerSample === 2
    ? new Uint16Array(out.buffer, out.byteOffset, out.byteLength >> 1)
    : new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * RLE Lossless (PS3.5 annex G): a 64-byte header of segment offsets, one PackBits segment per byte plane, most
 * significant byte first, samples planar.
 */
export function decodeRle(encoded: Uint8Array, layout: FrameLayout): StoredFrame {
  const view = new DataView(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  if (encoded.byteLength < 64) throw corrupt("RLE frame shorter than its 64-byte header");
  const segments = view.getUint32(0, true);
  const bytesPerSample = layout.bitsAllocated >> 3;
  const pixels = layout.rows * layout.columns;
  if (segments !== bytesPerSample * layout.samplesPerPixel) {
    throw corrupt(`RLE frame has ${segments} segments, ${bytesPerSample * layout.samplesPerPixel} expected`);
  }
  const samples = pixels * layout.samplesPerPixel;
  const out = bytesPerSample === 2 ? new Uint16Array(samples) : new Uint8Array(samples);
  const plane = new Uint8Array(pixels);
  for (let s = 0; s < segments; s++) {
    const start = view.getUint32(4 + 4 * s, true);
    const end = s + 1 < segments ? view.getUint32(8 + 4 * s, true) : encoded.byteLength;
    if (start < 64 || end > encoded.byteLength || end < start)
      throw corrupt(`RLE segment ${s + 1} lies outside the frame`);
    unpackBits(encoded.subarray(start, end), plane, s + 1);
    const sample = Math.floor(s / bytesPerSample);
    const shift = 8 * (bytesPerSample - 1 - (s % bytesPerSample));
    // the interleaved sample order expected downstream: pixel-major, sample-minor
    for (let p = 0; p < pixels; p++)
      out[p * layout.samplesPerPixel + sample] = out[p * layout.samplesPerPixel + sample]! | (plane[p]! << shift);
  }
  return out;
}

/** Pixel data a decoder could not make sense of; `cause`: the codec's own error, when it threw one. */
function corrupt(why: string, cause?: unknown): DelineateError {
  return new DelineateError("DLN_ERR_DICOM_DECODE", why, {}, cause === undefined ? undefined : { cause });
}

function unpackBits(src: Uint8Array, dst: Uint8Array, segment: number): void {
  let i = 0,
    o = 0;
  while (o < dst.length && i < src.length) {
    const n = src[i++]!;
    if (n < 128) {
      const len = n + 1;
      if (i + len > src.length) break;
      dst.set(src.subarray(i, i + len).subarray(0, dst.length - o), o);
      o += len;
      i += len;
    } else if (n > 128) {
      const len = 257 - n;
      dst.fill(src[i++]!, o, Math.min(dst.length, o + len));
      o += len;
    } // 128 is a no-op
  }
  if (o < dst.length) throw corrupt(`RLE segment ${segment} decodes to ${o} of ${dst.length} bytes (truncated)`);
}

/**
 * The encoded bytes of each frame of encapsulated pixel data as dcmjs gives it: with a Basic Offset Table dcmjs
 * has already merged each frame's fragments; without one it gives the fragments, which are then one per frame, or
 * all of one frame, or split where a JPEG (FFD8) or JPEG 2000 (FF4F) codestream starts.
 */
export function encapsulatedFrames(pixelData: unknown, frames: number): Uint8Array[] {
  const parts = (Array.isArray(pixelData) ? pixelData : [pixelData])
    .filter((p): p is ArrayBuffer => p instanceof ArrayBuffer)
    .map((p) => new Uint8Array(p));
  if (parts.length === frames) return parts;
  const concat = (list: Uint8Array[]) => {
    const out = new Uint8Array(list.reduce((n, p) => n + p.byteLength, 0));
    list.reduce((at, p) => (out.set(p, at), at + p.byteLength), 0);
    return out;
  };
  if (frames === 1) return [concat(parts)];
  const starts = (p: Uint8Array) => p[0] === 0xff && (p[1] === 0xd8 || p[1] === 0x4f);
  const grouped: Uint8Array[][] = [];
  for (const p of parts) {
    if (starts(p) || grouped.length === 0) grouped.push([p]);
    else grouped[grouped.length - 1]!.push(p);
  }
  if (grouped.length !== frames)
    throw corrupt(
      `encapsulated pixel data has ${parts.length} fragments that make ${grouped.length} frames, not ${frames}`,
    );
  return grouped.map(concat);
}
