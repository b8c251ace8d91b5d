import { add, dot, scale, sub, type Vec3 } from "./geometry.js";
import type { VolumeGrid } from "./volume.js";

/** A stack of parallel slices as the series holds them: sorted along the normal, each at its own position. */
export interface SliceStack {
  /** the stack's grid: origin at the first slice, spacing[2] the distance between planes (planVolume's) */
  grid: VolumeGrid;
  /** each slice's ImagePositionPatient, in stack order */
  positions: Vec3[];
  readSlice(k: number, out: Float32Array): void;
}

/** A rectilinear grid resampled from a sheared or irregular stack, and how its planes relate to the stack's slices. */
export interface ResampledStack {
  grid: VolumeGrid;
  readSlice(m: number, out: Float32Array): void;
  /** per stack slice: its in-plane offset on the grid, in voxels (where its pixel (0, 0) lies), and its plane */
  placement: { di: number; dj: number; plane: number }[];
}

/**
 * Resamples a stack whose slices are sheared (gantry tilt: each slice's origin moves in-plane as well as along the
 * normal) or irregularly spaced (missing slices, varying steps) onto a rectilinear grid, as dcm2niix's `_Tilt` and
 * `_Eq` outputs do: row and column as the slices', the slice axis the true normal; the in-plane extent grown so every
 * slice fits whole; planes `step` apart along the normal. Each plane is the slice at its distance, or linear
 * interpolation between the two slices around it; in-plane, bilinear interpolation at the slice's offset. Voxels no
 * slice covers take the lowest value of the slices sampled for that plane (air or padding, for CT).
 * Without `equalise` (tilt alone, steps regular within tolerance) plane k is slice k, as an untilted stack's would be.
 * `slices` of the grid: the stack's when every plane is one slice; empty when planes lie between slices.
 */
export function resampleStack(stack: SliceStack, step: number, equalise: boolean): ResampledStack {
  const { grid } = stack;
  const [nx, ny, nz] = grid.dims;
  const [sx, sy] = grid.spacing;
  const [row, column, normal] = grid.direction;
  const p0 = stack.positions[0]!;
  const rel = stack.positions.map((p) => sub(p, p0));
  const u = rel.map((r) => dot(r, row) / sx),
    v = rel.map((r) => dot(r, column) / sy),
    d = rel.map((r) => dot(r, normal));
  // in-plane extent in voxels, grown to hold each slice at its offset (sub-voxel offsets below 1e-3 are rounding)
  const lo = (xs: number[]) => Math.min(0, ...xs.map((x) => x + 1e-3)),
    hi = (xs: number[]) => Math.max(0, ...xs.map((x) => x - 1e-3));
  const [ulo, vlo] = [Math.floor(lo(u)), Math.floor(lo(v))];
  const mx = nx + Math.ceil(hi(u)) - ulo,
    my = ny + Math.ceil(hi(v)) - vlo;
  const last = d[nz - 1]!;
  const planes = equalise ? Math.round(last / step) + 1 : nz;
  const origin = add(add(p0, scale(row, ulo * sx)), scale(column, vlo * sy));
  const out: VolumeGrid = {
    ...grid,
    dims: [mx, my, planes],
    spacing: [sx, sy, step],
    origin,
    slices: equalise ? [] : grid.slices,
  };

  // the last two stack slices decoded: planes are read in order, and each needs at most the slices around it
  const decoded = new Map<number, Float32Array>();
  const slice = (k: number) => {
    let s = decoded.get(k);
    if (!s) {
      s = new Float32Array(nx * ny);
      stack.readSlice(k, s);
      if (decoded.size >= 2) decoded.delete(decoded.keys().next().value!);
      decoded.set(k, s);
    }
    return s;
  };
  const lowest = (s: Float32Array) => s.reduce((a, b) => Math.min(b, a), Infinity);
  /** stack slice k sampled on the grid's plane, weighted by w, added into `into` (outside the slice: `fill`) */
  const sample = (k: number, w: number, fill: number, into: Float32Array) => {
    const s = slice(k);
    const oi = ulo - u[k]!,
      oj = vlo - v[k]!; // grid voxel (i, j) lies at slice pixel (i + oi, j + oj)
    for (let j = 0; j < my; j++) {
      const y = j + oj;
      const y0 = Math.floor(y),
        fy = y - y0;
      const rowOk = y > -1e-6 && y < ny - 1 + 1e-6;
      for (let i = 0; i < mx; i++) {
        const x = i + oi;
        const x0 = Math.floor(x),
          fx = x - x0;
        let value = fill;
        if (rowOk && x > -1e-6 && x < nx - 1 + 1e-6) {
          // clamped: a point within 1e-6 of an edge may floor to the pixel beyond it
          const a = clamp(x0, nx),
            b = clamp(x0 + 1, nx),
            c = clamp(y0, ny) * nx,
            e = clamp(y0 + 1, ny) * nx;
          value = (s[c + a]! * (1 - fx) + s[c + b]! * fx) * (1 - fy) + (s[e + a]! * (1 - fx) + s[e + b]! * fx) * fy;
        }
        into[j * mx + i] = into[j * mx + i]! + w * value;
      }
    }
  };
  const readSlice = (m: number, into: Float32Array) => {
    into.fill(0);
    if (!equalise) return sample(m, 1, lowest(slice(m)), into);
    const at = Math.min(m * step, last);
    let k = 0;
    while (k < nz - 2 && d[k + 1]! <= at) k++;
    const w = nz === 1 ? 0 : Math.min(1, Math.max(0, (at - d[k]!) / (d[k + 1]! - d[k]!)));
    // a plane within 1e-3 mm of a slice is that slice, not a blend
    if (w * (d[k + 1]! - d[k]!) < 1e-3) return sample(k, 1, lowest(slice(k)), into);
    if ((1 - w) * (d[k + 1]! - d[k]!) < 1e-3) return sample(k + 1, 1, lowest(slice(k + 1)), into);
    const fill = Math.min(lowest(slice(k)), lowest(slice(k + 1)));
    sample(k, 1 - w, fill, into);
    sample(k + 1, w, fill, into);
  };
  const placement = d.map((dk, k) => ({
    di: u[k]! - ulo,
    dj: v[k]! - vlo,
    plane: equalise ? Math.round(dk / step) : k,
  }));
  return { grid: out, readSlice, placement };
}

const clamp = (index: number, n: number) => (index < 0 ? 0 : index >= n ? n - 1 : index);
