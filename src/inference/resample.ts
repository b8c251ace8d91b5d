/**
 * Linear interpolation weights for mapping `dst` samples onto `src` samples along one axis, with the
 * grids' outer edges aligned (voxel centres at (i + 0.5)·size/n): what both resamplings use.
 */
export interface AxisWeights {
  i0: Int32Array;
  i1: Int32Array;
  w1: Float32Array;
}

export function axisWeights(src: number, dst: number): AxisWeights {
  const i0 = new Int32Array(dst),
    i1 = new Int32Array(dst),
    w1 = new Float32Array(dst);
  const ratio = src / dst;
  for (let d = 0; d < dst; d++) {
    const x = Math.min(Math.max((d + 0.5) * ratio - 0.5, 0), src - 1);
    const f = Math.floor(x);
    i0[d] = f;
    i1[d] = Math.min(f + 1, src - 1);
    w1[d] = x - f;
  }
  return { i0, i1, w1 };
}

/** A grid's size [nx, ny, nz], x fastest. */
type Dims3 = readonly [number, number, number];

/** Trilinear resampling of a [nx, ny, nz] grid (x fastest) to new dimensions, separably (x, then y, then z). */
export function resampleLinear(src: Float32Array, from: Dims3, to: Dims3): Float32Array {
  const [sx, sy, sz] = from;
  const [dx, dy, dz] = to;
  const wx = axisWeights(sx, dx),
    wy = axisWeights(sy, dy),
    wz = axisWeights(sz, dz);
  const a = new Float32Array(dx * sy * sz);
  for (let r = 0; r < sy * sz; r++) {
    const s = r * sx,
      d = r * dx;
    for (let i = 0; i < dx; i++) a[d + i] = src[s + wx.i0[i]!]! * (1 - wx.w1[i]!) + src[s + wx.i1[i]!]! * wx.w1[i]!;
  }
  const b = new Float32Array(dx * dy * sz);
  for (let k = 0; k < sz; k++) {
    for (let j = 0; j < dy; j++) {
      const r0 = (k * sy + wy.i0[j]!) * dx,
        r1 = (k * sy + wy.i1[j]!) * dx,
        w = wy.w1[j]!,
        d = (k * dy + j) * dx;
      for (let i = 0; i < dx; i++) b[d + i] = a[r0 + i]! * (1 - w) + a[r1 + i]! * w;
    }
  }
  const out = new Float32Array(dx * dy * dz);
  const plane = dx * dy;
  for (let k = 0; k < dz; k++) {
    const p0 = wz.i0[k]! * plane,
      p1 = wz.i1[k]! * plane,
      w = wz.w1[k]!,
      d = k * plane;
    for (let i = 0; i < plane; i++) out[d + i] = b[p0 + i]! * (1 - w) + b[p1 + i]! * w;
  }
  return out;
}

/** Pads a [nx, ny, nz] grid at the high end of each axis to `to`, replicating the edge voxels. */
export function padEdge(src: Float32Array, from: Dims3, to: Dims3): Float32Array {
  const [sx, sy, sz] = from;
  const [dx, dy, dz] = to;
  const out = new Float32Array(dx * dy * dz);
  for (let k = 0; k < dz; k++) {
    const ks = Math.min(k, sz - 1);
    for (let j = 0; j < dy; j++) {
      const js = Math.min(j, sy - 1);
      const s = (ks * sy + js) * sx,
        d = (k * dy + j) * dx;
      out.set(src.subarray(s, s + sx), d);
      const last = src[s + sx - 1]!;
      for (let i = sx; i < dx; i++) out[d + i] = last;
    }
  }
  return out;
}
