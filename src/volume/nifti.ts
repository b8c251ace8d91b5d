import { closeSync, createReadStream, createWriteStream, openSync, renameSync, rmSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { readAt, writeAll } from "../fileRange.js";
import type { VolumeGrid } from "./volume.js";

/** The volume's voxel → world affine in NIfTI's RAS+ (DICOM's LPS with x and y negated), row-major 3×4. */
export function rasAffine(volume: VolumeGrid): number[][] {
  const [row, column, normal] = volume.direction;
  const [sx, sy, sz] = volume.spacing;
  const lps = [0, 1, 2].map((a) => [row[a]! * sx, column[a]! * sy, normal[a]! * sz, volume.origin[a]!]);
  return lps.map((r, a) => (a < 2 ? r.map((v) => -v) : r));
}

/** NIfTI's quaternion parameters for an affine's rotation (nifti1_io's mat44_to_quatern, without its polar decomposition). */
function quaternion(affine: number[][], spacing: readonly number[]): { b: number; c: number; d: number; qfac: number } {
  const R = [0, 1, 2].map((i) => [0, 1, 2].map((j) => affine[i]![j]! / spacing[j]!));
  const det =
    R[0]![0]! * (R[1]![1]! * R[2]![2]! - R[1]![2]! * R[2]![1]!) -
    R[0]![1]! * (R[1]![0]! * R[2]![2]! - R[1]![2]! * R[2]![0]!) +
    R[0]![2]! * (R[1]![0]! * R[2]![1]! - R[1]![1]! * R[2]![0]!);
  const qfac = det < 0 ? -1 : 1;
  if (qfac < 0) for (const r of R) r[2] = -r[2]!;
  const [r11, r12, r13] = R[0]!,
    [r21, r22, r23] = R[1]!,
    [r31, r32, r33] = R[2]!;
  let a = r11! + r22! + r33! + 1,
    b: number,
    c: number,
    d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32! - r23!)) / a;
    c = (0.25 * (r13! - r31!)) / a;
    d = (0.25 * (r21! - r12!)) / a;
  } else {
    const xd = 1 + r11! - (r22! + r33!),
      yd = 1 + r22! - (r11! + r33!),
      zd = 1 + r33! - (r11! + r22!);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12! + r21!)) / b;
      d = (0.25 * (r13! + r31!)) / b;
      a = (0.25 * (r32! - r23!)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12! + r21!)) / c;
      d = (0.25 * (r23! + r32!)) / c;
      a = (0.25 * (r13! - r31!)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13! + r31!)) / d;
      c = (0.25 * (r23! + r32!)) / d;
      a = (0.25 * (r21! - r12!)) / d;
    }
    if (a < 0) [b, c, d] = [-b, -c, -d];
  }
  return { b, c, d, qfac };
}

/** NIfTI-1's 348-byte header and 4-byte extension flag for a grid stored as int16 or float32, in RAS+. */
function niftiHeader(grid: VolumeGrid, type: "int16" | "float32", description: string): Buffer {
  const [nx, ny, nz] = grid.dims;
  const out = Buffer.alloc(352);
  const affine = rasAffine(grid);
  const q = quaternion(affine, grid.spacing);
  out.writeInt32LE(348, 0);
  for (const [i, v] of [3, nx, ny, nz, 1, 1, 1, 1].entries()) out.writeInt16LE(v, 40 + 2 * i);
  out.writeInt16LE(type === "int16" ? 4 : 16, 70); // DT_INT16 or DT_FLOAT32
  out.writeInt16LE(type === "int16" ? 16 : 32, 72);
  for (const [i, v] of [q.qfac, ...grid.spacing, 0, 0, 0, 0].entries()) out.writeFloatLE(v, 76 + 4 * i);
  out.writeFloatLE(352, 108); // vox_offset
  out.writeFloatLE(1, 112); // scl_slope
  out.writeFloatLE(0, 116); // scl_inter
  out.writeUInt8(2, 123); // xyzt_units: mm
  out.write(description.slice(0, 79), 148, "latin1");
  out.writeInt16LE(1, 252); // qform_code: scanner
  out.writeInt16LE(1, 254); // sform_code: scanner
  const quatern = [q.b, q.c, q.d, affine[0]![3]!, affine[1]![3]!, affine[2]![3]!];
  for (const [i, v] of quatern.entries()) out.writeFloatLE(v, 256 + 4 * i);
  for (const [i, row] of affine.entries())
    for (const [j, v] of row.entries()) out.writeFloatLE(v, 280 + 16 * i + 4 * j);
  out.write("n+1\0", 344, "latin1");
  return out;
}

/**
 * Writes a NIfTI-1 file (gzipped when the name ends in .gz) slice by slice, so a volume is never held whole: int16
 * while every value is an integer in range (rescaled CT usually is; `readSliceInt16`, when given, decodes such a
 * slice straight to int16), float32 otherwise; sform and qform both
 * scanner-based, in RAS+ as NIfTI expects. The voxels go to a temporary file beside `file`, renamed (or gzipped)
 * into place at the end, so a failed conversion leaves no half-written volume under the promised name.
 */
export async function writeNiftiFile(
  file: string,
  grid: VolumeGrid,
  readSlice: (k: number, out: Float32Array) => void,
  description = "",
  readSliceInt16?: (k: number, out: Int16Array) => boolean,
): Promise<void> {
  const [nx, ny, nz] = grid.dims;
  const n = nx * ny;
  const temp = `${file}.${process.pid}.partial`;
  try {
    const fd = openSync(temp, "w+"); // read too: widening to float32 reads back the int16 slices
    try {
      const slice = new Float32Array(n);
      const asInt16 = new Int16Array(n);
      let type: "int16" | "float32" = "int16";
      for (let k = 0; k < nz; k++) {
        // straight to int16 while every value fits (no float32 slice, no second pass to check it)
        if (type === "int16" && readSliceInt16?.(k, asInt16)) {
          writeAll(fd, new Uint8Array(asInt16.buffer), 352 + k * n * 2);
          continue;
        }
        readSlice(k, slice);
        if (type === "int16") {
          let i = 0;
          // (v << 16) >> 16 keeps the low 16 bits, sign-extended: equal to v only for an integer in int16 range (never NaN)
          for (; i < n; i++) {
            const v = slice[i]!;
            if ((v << 16) >> 16 !== v) break;
            asInt16[i] = v;
          }
          if (i === n) {
            writeAll(fd, new Uint8Array(asInt16.buffer), 352 + k * n * 2);
            continue;
          }
          widenToFloat32(fd, k, n);
          type = "float32";
        }
        writeAll(fd, new Uint8Array(slice.buffer), 352 + k * n * 4);
      }
      writeAll(fd, niftiHeader(grid, type, description), 0);
    } finally {
      closeSync(fd);
    }
    if (file.endsWith(".gz")) await pipeline(createReadStream(temp), createGzip({ level: 6 }), createWriteStream(file));
    else renameSync(temp, file);
  } finally {
    rmSync(temp, { force: true }); // gone after a rename; after a failure, nothing half-written is left
  }
}

/**
 * Rewrites the first `slices` int16 slices already in the file as float32, in place: from the last back, slice k's
 * float32 bytes start at or after its int16 bytes and end before any later slice's, so nothing unread is overwritten.
 */
function widenToFloat32(fd: number, slices: number, n: number): void {
  const float32 = new Float32Array(n);
  for (let k = slices - 1; k >= 0; k--) {
    float32.set(new Int16Array(readAt(fd, 352 + k * n * 2, n * 2).buffer));
    writeAll(fd, new Uint8Array(float32.buffer), 352 + k * n * 4);
  }
}
