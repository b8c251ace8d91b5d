import { readFileSync } from "node:fs";
import { inflateRawSync } from "node:zlib";

/** One array of a .npy: its shape and values (float16 widened to float32; little-endian only). */
export interface NpyArray {
  shape: number[];
  data: Float32Array | Float64Array | Uint8Array | Int16Array | Int32Array;
  dtype: string;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? Number.NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

export function parseNpy(b: Buffer): NpyArray {
  if (b.toString("latin1", 1, 6) !== "NUMPY") throw new Error("not a .npy");
  const major = b[6]!;
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.toString("latin1", start, start + hlen);
  const dtype = /'descr':\s*'([^']+)'/.exec(header)![1]!;
  if (/'fortran_order':\s*True/.test(header)) throw new Error("fortran order not supported");
  const shape = /'shape':\s*\(([^)]*)\)/
    .exec(header)![1]!
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const body = b.subarray(start + hlen);
  const copy = (n: number) => body.buffer.slice(body.byteOffset, body.byteOffset + n);
  const count = shape.reduce((a, n) => a * n, 1);
  switch (dtype) {
    case "<f4":
      return { shape, dtype, data: new Float32Array(copy(count * 4)) };
    case "<f8":
      return { shape, dtype, data: new Float64Array(copy(count * 8)) };
    case "|u1":
      return { shape, dtype, data: new Uint8Array(copy(count)) };
    case "<i2":
      return { shape, dtype, data: new Int16Array(copy(count * 2)) };
    case "<i4":
      return { shape, dtype, data: new Int32Array(copy(count * 4)) };
    case "<f2": {
      const h = new Uint16Array(copy(count * 2));
      return { shape, dtype, data: Float32Array.from(h, halfToFloat) };
    }
    default:
      throw new Error(`dtype ${dtype} not supported`);
  }
}

/** The arrays of a .npz (numpy's zip of .npy files, stored or deflated), read through the central directory. */
export function readNpz(file: string): Map<string, NpyArray> {
  const b = readFileSync(file);
  let eocd = b.length - 22;
  while (eocd >= 0 && b.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error(`${file}: no zip end record`);
  let entries = b.readUInt16LE(eocd + 10);
  let p = b.readUInt32LE(eocd + 16);
  const out = new Map<string, NpyArray>();
  while (entries--) {
    const method = b.readUInt16LE(p + 10);
    let csize = b.readUInt32LE(p + 20);
    const nameLen = b.readUInt16LE(p + 28),
      extraLen = b.readUInt16LE(p + 30),
      commentLen = b.readUInt16LE(p + 32);
    let local = b.readUInt32LE(p + 42);
    const name = b.toString("utf8", p + 46, p + 46 + nameLen);
    // zip64 extra field: sizes / offset that overflowed 32 bits
    const extra = b.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
    for (let e = 0; e + 4 <= extra.length; ) {
      const id = extra.readUInt16LE(e),
        len = extra.readUInt16LE(e + 2);
      if (id === 1) {
        let q = e + 4;
        const usize32 = b.readUInt32LE(p + 24);
        if (usize32 === 0xffffffff) q += 8;
        if (csize === 0xffffffff) {
          csize = Number(extra.readBigUInt64LE(q));
          q += 8;
        }
        if (local === 0xffffffff) local = Number(extra.readBigUInt64LE(q));
      }
      e += 4 + len;
    }
    const dataStart = local + 30 + b.readUInt16LE(local + 26) + b.readUInt16LE(local + 28);
    const raw = b.subarray(dataStart, dataStart + csize);
    const content = method === 8 ? inflateRawSync(raw) : raw;
    out.set(name.replace(/\.npy$/, ""), parseNpy(Buffer.from(content)));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}
