/**
 * Reorientation to a model's axis convention: which patient direction each tensor axis (x, y, z) increases toward,
 * as three letters from L/R, P/A, S/I ("LPS": DICOM's axial order; "RAS": NIfTI viewers'). Only whole-voxel
 * permutations and flips, never interpolation, so the way back is exact.
 */
import type { Vec3 } from "../volume/geometry.js";

type Dims = [number, number, number];

/** Output axis t is input axis `perm[t]`, reversed when `flip[t]`. */
export interface AxisMapping {
  perm: [number, number, number];
  flip: [boolean, boolean, boolean];
}

const POSITIVE = "LPS",
  NEGATIVE = "RAI";

/**
 * The letters of a grid's axes from its direction cosines (DICOM LPS), each axis named for the patient axis it is
 * closest to; an oblique grid gets the nearest code, as SimpleITK's DICOMOrient and MONAI's Orientation do.
 */
export function orientationCode(direction: readonly [Vec3, Vec3, Vec3]): string {
  const letters: string[] = [];
  const used = new Set<number>();
  // the most clearly aligned axes choose first, so two axes never take the same patient axis
  const order = [0, 1, 2].sort(
    (a, b) => Math.max(...direction[b]!.map(Math.abs)) - Math.max(...direction[a]!.map(Math.abs)),
  );
  for (const a of order) {
    const d = direction[a]!;
    const p = [0, 1, 2]
      .filter((q) => !used.has(q))
      .reduce((best, q) => (Math.abs(d[q]!) > Math.abs(d[best]!) ? q : best));
    used.add(p);
    letters[a] = d[p]! >= 0 ? POSITIVE[p]! : NEGATIVE[p]!;
  }
  return letters.join("");
}

const patientAxis = (letter: string) => Math.max(POSITIVE.indexOf(letter), NEGATIVE.indexOf(letter));

/** The mapping that takes a grid with axes `from` to one with axes `to` (both valid three-letter codes). */
export function axisMapping(from: string, to: string): AxisMapping {
  const perm = [0, 0, 0] as [number, number, number];
  const flip = [false, false, false] as [boolean, boolean, boolean];
  for (let t = 0; t < 3; t++) {
    const a = [...from].findIndex((l) => patientAxis(l) === patientAxis(to[t]!));
    perm[t] = a;
    flip[t] = from[a] !== to[t];
  }
  return { perm, flip };
}

export const isIdentity = (m: AxisMapping): boolean => m.perm.every((a, t) => a === t) && !m.flip.some(Boolean);

/** The mapping that undoes `m`. */
export function invertMapping(m: AxisMapping): AxisMapping {
  const perm = [0, 0, 0] as [number, number, number];
  const flip = [false, false, false] as [boolean, boolean, boolean];
  for (const [t, a] of m.perm.entries()) {
    perm[a] = t;
    flip[a] = m.flip[t]!;
  }
  return { perm, flip };
}

/** A [x, y, z] grid (x fastest) with its axes permuted and flipped by `m`, into a new array. */
export function permuteAxes<T extends Float32Array | Uint8Array>(
  data: T,
  dims: Dims,
  m: AxisMapping,
): { data: T; dims: Dims } {
  const out = dims.map((_, t) => dims[m.perm[t]!]!) as Dims;
  const strides = [1, dims[0], dims[0] * dims[1]];
  // the input offset of output index 0 on each axis and the step per output index
  let start = 0;
  const step = [0, 0, 0];
  for (let t = 0; t < 3; t++) {
    const a = m.perm[t]!;
    step[t] = m.flip[t] ? -strides[a]! : strides[a]!;
    if (m.flip[t]) start += (dims[a]! - 1) * strides[a]!;
  }
  const result = new (data.constructor as new (n: number) => T)(data.length);
  let o = 0;
  for (let k = 0; k < out[2]; k++)
    for (let j = 0; j < out[1]; j++) {
      let s = start + k * step[2]! + j * step[1]!;
      for (let i = 0; i < out[0]; i++, s += step[0]!) result[o++] = data[s]!;
    }
  return { data: result, dims: out };
}
