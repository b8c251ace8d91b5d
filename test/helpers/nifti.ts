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

/** numpy-only NIfTI-1 reading (no nibabel in CI): the data scaled by scl_slope/scl_inter, and the sform. */
const LOAD = `import gzip, json, sys, numpy as np
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
    return data, A`;

/**
 * Compares two NIfTI files as dcm2niix parity needs: each read with numpy (scaled by scl_slope/scl_inter), reoriented
 * to the axis order and directions closest to RAS by its own sform, then compared voxel by voxel and by affine.
 * `volumeOfB`: b is 4D (dcm2niix writes time series so) and its volume with this 0-based index is compared.
 */
export function compareNifti(a: string, b: string, volumeOfB?: number): Promise<NiftiComparison> {
  return python(
    `
${LOAD}
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

export interface CommonVoxelComparison {
  /** voxels of a whose centres are voxel centres of b (within 0.05 voxel), and of how many */
  compared: number;
  ofA: number;
  /** planes of a that hold such voxels */
  planes: number;
  maxDifference: number;
  /** 99th percentile of the absolute differences */
  p99: number;
  /** the share of compared voxels that differ by more than 1 */
  overOne: number;
  maxAffineDifferenceMm: number;
}

/**
 * Compares two NIfTI files in patient space, for resampled volumes whose grids need not match: each voxel centre of
 * a is mapped through both sforms into b, and where it falls on a voxel centre of b the two values are compared.
 */
export function compareOnCommonVoxels(a: string, b: string): Promise<CommonVoxelComparison> {
  return python(
    `
${LOAD}
A, Aa = load(sys.argv[1])
B, Ab = load(sys.argv[2])
M = np.linalg.inv(np.vstack([Ab, [0, 0, 0, 1]])) @ np.vstack([Aa, [0, 0, 0, 1]])
ii, jj, kk = np.meshgrid(*[np.arange(n) for n in A.shape[:3]], indexing="ij")
q = (M @ np.stack([ii.ravel(), jj.ravel(), kk.ravel(), np.ones(ii.size)]))[:3]
r = np.round(q)
on = np.all(np.abs(q - r) < 0.05, axis=0) & np.all(r >= 0, axis=0) & np.all(r < np.array(B.shape[:3])[:, None], axis=0)
ri = r[:, on].astype(int)
d = np.abs(A.ravel()[on] - B[ri[0], ri[1], ri[2]]) if on.any() else np.zeros(1)
print(json.dumps({"compared": int(on.sum()), "ofA": int(A.size), "planes": len(set(kk.ravel()[on].tolist())),
  "maxDifference": float(d.max()), "p99": float(np.percentile(d, 99)), "overOne": float((d > 1).mean()),
  "maxAffineDifferenceMm": float(np.abs(Aa - Ab).max())}))`,
    [a, b],
  );
}

/**
 * Checks a resampled NIfTI against the DICOM images it came from, read by pydicom: on each plane that lies on a
 * source image's plane (within 0.01 mm), every voxel inside the image against the image's bilinear interpolation at
 * the voxel's patient position, computed from ImagePositionPatient, ImageOrientationPatient and PixelSpacing.
 */
export function compareWithSourceImages(
  nifti: string,
  files: string[],
): Promise<{ planes: number; voxels: number; maxDifference: number }> {
  return python(
    `
${LOAD}
import pydicom
V, A = load(sys.argv[1])
A = A.copy(); A[:2] *= -1  # RAS to LPS
out = {"planes": 0, "voxels": 0, "maxDifference": 0.0}
for f in sys.argv[2:]:
    ds = pydicom.dcmread(f)
    if "PixelData" not in ds or "ImagePositionPatient" not in ds: continue
    ipp = np.array(ds.ImagePositionPatient, float); iop = np.array(ds.ImageOrientationPatient, float)
    r, c = iop[:3], iop[3:]; n = np.cross(r, c); ps = [float(x) for x in ds.PixelSpacing]
    px = ds.pixel_array.astype(np.float64) * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))
    along = [(A[:, :3] @ [0, 0, k] + A[:, 3]) @ n for k in range(V.shape[2])]
    k = int(np.argmin([abs(d - ipp @ n) for d in along]))
    if abs(along[k] - ipp @ n) > 1e-2: continue
    ii, jj = np.meshgrid(np.arange(V.shape[0]), np.arange(V.shape[1]), indexing="ij")
    w = (A[:, :3] @ np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, k)]) + A[:, 3:4]).T - ipp
    x = w @ r / ps[1]; y = w @ c / ps[0]
    ok = (x >= 0) & (x <= px.shape[1] - 1) & (y >= 0) & (y <= px.shape[0] - 1)
    x0 = np.clip(np.floor(x).astype(int), 0, px.shape[1] - 2); y0 = np.clip(np.floor(y).astype(int), 0, px.shape[0] - 2)
    fx = x - x0; fy = y - y0
    v = (px[y0, x0] * (1 - fx) + px[y0, x0 + 1] * fx) * (1 - fy) + (px[y0 + 1, x0] * (1 - fx) + px[y0 + 1, x0 + 1] * fx) * fy
    d = np.abs(v - V[:, :, k].ravel())[ok]
    out["planes"] += 1; out["voxels"] += int(ok.sum()); out["maxDifference"] = max(out["maxDifference"], float(d.max()))
print(json.dumps(out))`,
    [nifti, ...files],
  );
}

/** Where a NIfTI file's sform puts the centres of its 8 corner voxels, in RAS mm (the first 3 dimensions). */
export function cornerPositions(file: string): Promise<[number, number, number][]> {
  return python(
    `
${LOAD}
data, A = load(sys.argv[1])
n = data.shape
print(json.dumps([(A @ [i, j, k, 1]).tolist() for i in (0, n[0] - 1) for j in (0, n[1] - 1) for k in (0, n[2] - 1)]))`,
    [file],
  );
}
