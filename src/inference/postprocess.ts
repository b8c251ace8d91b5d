import type { LabelMap } from "../volume/volume.js";

/**
 * Keeps, for one label value, only its largest 6-connected component in 3D; the other voxels of that label
 * become background. Works in place; returns the number of voxels removed.
 */
export function keepLargestComponent(labels: LabelMap, value: number): number {
  const [nx, ny, nz] = labels.dims;
  const data = labels.data;
  const plane = nx * ny;
  const component = new Int32Array(data.length); // 0 = not visited
  const queue = new Int32Array(data.length);
  let best = 0, bestSize = 0, id = 0;
  for (let seed = 0; seed < data.length; seed++) {
    if (data[seed] !== value || component[seed] !== 0) continue;
    id++;
    let head = 0, tail = 0;
    queue[tail++] = seed;
    component[seed] = id;
    while (head < tail) {
      const p = queue[head++]!;
      const x = p % nx, y = ((p - x) / nx) % ny, z = (p - x - y * nx) / plane;
      const visit = (q: number) => {
        if (data[q] === value && component[q] === 0) {
          component[q] = id;
          queue[tail++] = q;
        }
      };
      if (x > 0) visit(p - 1);
      if (x < nx - 1) visit(p + 1);
      if (y > 0) visit(p - nx);
      if (y < ny - 1) visit(p + nx);
      if (z > 0) visit(p - plane);
      if (z < nz - 1) visit(p + plane);
    }
    if (tail > bestSize) [best, bestSize] = [id, tail];
  }
  let removed = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === value && component[i] !== best) {
      data[i] = 0;
      removed++;
    }
  }
  return removed;
}
