import { readFileSync } from "node:fs";
import { gunzipSync, gzipSync } from "node:zlib";
import { DelineateError } from "../errors.js";

/** A NIfTI-1 image as nibabel's get_fdata() gives it (scaled), in float32, with the header kept for writing beside it. */
export interface NiftiImage {
  /** voxel counts along the file's axes i, j, k */
  dims: [number, number, number];
  /** pixdim[1..3], mm */
  spacing: [number, number, number];
  /** voxels, i fastest: the file's order; as a C-order array that is shape [k, j, i], nnU-Net's axis order */
  data: Float32Array;
  /** the 348-byte header, little-endian, for a label map with the same geometry */
  header: Buffer;
}

const TYPES: Record<number, [number, (b: Buffer, o: number) => number]> = {
  2: [1, (b, o) => b.readUInt8(o)],
  4: [2, (b, o) => b.readInt16LE(o)],
  8: [4, (b, o) => b.readInt32LE(o)],
  16: [4, (b, o) => b.readFloatLE(o)],
  64: [8, (b, o) => b.readDoubleLE(o)],
  256: [1, (b, o) => b.readInt8(o)],
  512: [2, (b, o) => b.readUInt16LE(o)],
  768: [4, (b, o) => b.readUInt32LE(o)],
};

/** Reads a .nii or .nii.gz (NIfTI-1, little-endian, 3D or 4D with one volume). */
export function readNifti(file: string): NiftiImage {
  let buf = readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  const bad = (why: string) =>
    new DelineateError("DLN_ERR_VOLUME_UNSUPPORTED", `${file}: ${why}`, { file: file.split("/").pop() ?? file });
  if (buf.length < 352 || buf.readInt32LE(0) !== 348) throw bad("not a little-endian NIfTI-1 file");
  const ndim = buf.readInt16LE(40);
  const dims = [1, 2, 3].map((a) => (a <= ndim ? buf.readInt16LE(40 + 2 * a) : 1)) as [number, number, number];
  for (let a = 4; a <= ndim; a++)
    if (buf.readInt16LE(40 + 2 * a) > 1) throw bad("more than one volume (a 4D file); give one channel");
  const datatype = buf.readInt16LE(70);
  const type = TYPES[datatype];
  if (!type) throw bad(`NIfTI datatype ${datatype} is not supported`);
  const spacing = [1, 2, 3].map((a) => Math.abs(buf.readFloatLE(76 + 4 * a))) as [number, number, number];
  const offset = Math.round(buf.readFloatLE(108));
  let slope = buf.readFloatLE(112);
  let inter = buf.readFloatLE(116);
  // nibabel: a zero or non-finite slope means no scaling
  if (!Number.isFinite(slope) || slope === 0) {
    slope = 1;
    inter = 0;
  }
  if (!Number.isFinite(inter)) inter = 0;
  const n = dims[0] * dims[1] * dims[2];
  const [size, read] = type;
  if (buf.length < offset + n * size) throw bad("the file is shorter than its header says");
  const data = new Float32Array(n);
  for (let v = 0; v < n; v++) data[v] = read(buf, offset + v * size) * slope + inter;
  return { dims, spacing, data, header: Buffer.from(buf.subarray(0, 348)) };
}

/** A uint8 label map with the input's header (same affine, as nnU-Net's writer keeps it), gzipped for .gz. */
export function niftiLabelFile(source: NiftiImage, labels: Uint8Array, gzip: boolean): Buffer {
  const h = Buffer.alloc(352);
  source.header.copy(h, 0, 0, 348);
  h.writeInt16LE(3, 40);
  for (let a = 1; a <= 3; a++) h.writeInt16LE(source.dims[a - 1]!, 40 + 2 * a);
  for (let a = 4; a <= 7; a++) h.writeInt16LE(1, 40 + 2 * a);
  h.writeInt16LE(2, 70); // DT_UINT8
  h.writeInt16LE(8, 72);
  h.writeFloatLE(352, 108);
  h.writeFloatLE(1, 112);
  h.writeFloatLE(0, 116);
  h.writeFloatLE(0, 124); // cal_max
  h.writeFloatLE(0, 128); // cal_min
  h.write("n+1\0", 344, "latin1");
  const out = Buffer.concat([h, Buffer.from(labels.buffer, labels.byteOffset, labels.length)]);
  return gzip ? gzipSync(out, { level: 6 }) : out;
}
