import { python } from "./tools.js";

export interface NiftiComparison {
  shapes: [number[], number[]];
  /** voxels that differ after both are scaled (scl_slope/inter) and reoriented */
  differing: number;
  /** largest absolute difference of two voxels (-1 when the shapes differ) */
  maxValueDifference: number;
  /** the largest magnitude in either volume: what float32 rounding errors scale with */
  maxMagnitude: number;
  maxAffineDifferenceMm: number;
}

/**
 * Compares two NIfTI files as dcm2niix parity needs: each read with numpy (scaled by scl_slope/scl_inter), reoriented
 * to the axis order and directions closest to RAS by its own sform, then compared voxel by voxel and by affine.
 * `volumeOfB`: b is 4D (dcm2niix writes time series so) and its volume with this 0-based index is compared.
 */
export function compareNifti(a: string, b: string, volumeOfB?: number): Promise<NiftiComparison> {
  return python(
    `
import gzip, json, sys, numpy as np
def load(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\\x1f\\x8b": raw = gzip.decompress(raw)
    h = np.frombuffer(raw[:348], dtype=np.uint8)
    dim = np.frombuffer(raw[40:56], dtype="<i2")
    dtype = {2: "u1", 4: "<i2", 8: "<i4", 16: "<f4", 64: "<f8", 512: "<u2", 256: "i1", 768: "<u4"}[int(np.frombuffer(raw[70:72], dtype="<i2")[0])]
    off = int(np.frombuffer(raw[108:112], dtype="<f4")[0])
    slope, inter = (float(v) for v in np.frombuffer(raw[112:120], dtype="<f4"))
    shape = tuple(int(v) for v in dim[1:1 + int(dim[0])])
    data = np.frombuffer(raw[off:], dtype=dtype, count=int(np.prod(shape))).reshape(shape, order="F").astype(np.float64)
    if slope not in (0.0, 1.0) or inter != 0.0: data = data * (slope if slope else 1.0) + inter
    while data.ndim > 3 and data.shape[-1] == 1: data = data[..., 0]
    A = np.frombuffer(raw[280:328], dtype="<f4").astype(np.float64).reshape(3, 4)
    return data, A
def canonical(data, A):
    M = A[:, :3]; t = A[:, 3].copy()
    axes = [int(np.argmax(np.abs(M[:, j]))) for j in range(3)]
    order = [axes.index(w) for w in range(3)]
    data = np.transpose(data, order); M = M[:, order]
    for w in range(3):
        if M[w, w] < 0:
            t = t + M[:, w] * (data.shape[w] - 1); M[:, w] = -M[:, w]; data = np.flip(data, axis=w)
    return data, np.hstack([M, t[:, None]])
da, Aa = canonical(*load(sys.argv[1]))
b, Ab = load(sys.argv[2])
if sys.argv[3] != "": b = b[..., int(sys.argv[3])]
db, Ab = canonical(b, Ab)
same = da.shape == db.shape
print(json.dumps({"shapes": [list(da.shape), list(db.shape)], "differing": int((da != db).sum()) if same else -1,
  "maxValueDifference": float(np.abs(da - db).max()) if same else -1,
  "maxMagnitude": float(max(np.abs(da).max(), np.abs(db).max())),
  "maxAffineDifferenceMm": float(np.abs(Aa - Ab).max())}))`,
    [a, b, volumeOfB === undefined ? "" : String(volumeOfB)],
  );
}
