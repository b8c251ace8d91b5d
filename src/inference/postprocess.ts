import type { LabelMap } from "../volume/volume.js";

/**
 * Keeps, for one label value, only its largest 6-connected component in 3D; the other voxels of that label
 * become background. Works in place; returns the number of voxels removed.
 * Memory: one byte per voxel plus a queue of the label's size, rather than full-volume component ids
 * (at 512×512×300: 78 MB + 4 bytes per labelled voxel).
 */
export function keepLargestComponent(labels: LabelMap, value: number): number {
  const [nx, ny, nz] = labels.dims;
  const data = labels.data;
  const plane = nx * ny;
  let count = 0;
  for (let i = 0; i < data.length; i++) if (data[i] === value) count++;
  if (count === 0) return 0;
  const seen = new Uint8Array(data.length);
  // Every voxel of the label enters this queue once, component after component, so when the search ends
  // the largest component is one contiguous run of it: no second flood, no per-voxel component ids.
  const queue = new Int32Array(count);
  let tail = 0, bestStart = 0, bestSize = 0;
  for (let seed = 0; seed < data.length; seed++) {
    if (data[seed] !== value || seen[seed]) continue;
    const start = tail;
    let head = tail;
    queue[tail++] = seed;
    seen[seed] = 1;
    while (head < tail) {
      const p = queue[head++]!;
      const x = p % nx, y = ((p - x) / nx) % ny, z = (p - x - y * nx) / plane;
      let q: number;
      if (x > 0 && data[(q = p - 1)] === value && !seen[q]) (seen[q] = 1), (queue[tail++] = q);
      if (x < nx - 1 && data[(q = p + 1)] === value && !seen[q]) (seen[q] = 1), (queue[tail++] = q);
      if (y > 0 && data[(q = p - nx)] === value && !seen[q]) (seen[q] = 1), (queue[tail++] = q);
      if (y < ny - 1 && data[(q = p + nx)] === value && !seen[q]) (seen[q] = 1), (queue[tail++] = q);
      if (z > 0 && data[(q = p - plane)] === value && !seen[q]) (seen[q] = 1), (queue[tail++] = q);
      if (z < nz - 1 && data[(q = p + plane)] === value && !seen[q]) (seen[q] = 1), (queue[tail++] = q);
    }
    if (tail - start > bestSize) [bestStart, bestSize] = [start, tail - start];
  }
  for (let i = 0; i < data.length; i++) if (data[i] === value) data[i] = 0;
  for (let i = bestStart; i < bestStart + bestSize; i++) data[queue[i]!] = value;
  return count - bestSize;
}
