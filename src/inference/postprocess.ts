import type { LabelMap } from "../volume/volume.js";

/**
 * Visits the 6-connected components of the voxels for which `member` holds, one after another. Every member voxel
 * enters one queue once, component after component, so a component is a contiguous run of it: `visit` gets the
 * queue, the run, and whether the component touches the volume's border. Memory: one byte per voxel plus four per
 * member voxel (at 512×512×300: 78 MB + 4 bytes per labelled voxel), never per-voxel component ids.
 */
function forEachComponent(
  labels: LabelMap,
  member: (v: number) => boolean,
  visit: (queue: Int32Array, start: number, end: number, touchesBorder: boolean) => void,
): void {
  const [nx, ny, nz] = labels.dims;
  const data = labels.data;
  const plane = nx * ny;
  let count = 0;
  for (let i = 0; i < data.length; i++) if (member(data[i]!)) count++;
  if (count === 0) return;
  const seen = new Uint8Array(data.length);
  const queue = new Int32Array(count);
  let tail = 0;
  for (let seed = 0; seed < data.length; seed++) {
    if (seen[seed] || !member(data[seed]!)) continue;
    const start = tail;
    let head = tail,
      border = false;
    queue[tail++] = seed;
    seen[seed] = 1;
    while (head < tail) {
      const p = queue[head++]!;
      const x = p % nx,
        y = ((p - x) / nx) % ny,
        z = (p - x - y * nx) / plane;
      if (x === 0 || y === 0 || z === 0 || x === nx - 1 || y === ny - 1 || z === nz - 1) border = true;
      // unrolled: this loop runs once per labelled voxel (tens of millions for a body outline)
      let q: number;
      if (x > 0 && !seen[(q = p - 1)] && member(data[q]!)) (seen[q] = 1), (queue[tail++] = q);
      if (x < nx - 1 && !seen[(q = p + 1)] && member(data[q]!)) (seen[q] = 1), (queue[tail++] = q);
      if (y > 0 && !seen[(q = p - nx)] && member(data[q]!)) (seen[q] = 1), (queue[tail++] = q);
      if (y < ny - 1 && !seen[(q = p + nx)] && member(data[q]!)) (seen[q] = 1), (queue[tail++] = q);
      if (z > 0 && !seen[(q = p - plane)] && member(data[q]!)) (seen[q] = 1), (queue[tail++] = q);
      if (z < nz - 1 && !seen[(q = p + plane)] && member(data[q]!)) (seen[q] = 1), (queue[tail++] = q);
    }
    visit(queue, start, tail, border);
  }
}

/** Keeps, for one label value, only its largest 6-connected 3D component (ties: the first found). In place; returns voxels removed. */
export function keepLargestComponent(labels: LabelMap, value: number): number {
  let best: [Int32Array, number, number] | undefined;
  let total = 0;
  forEachComponent(
    labels,
    (v) => v === value,
    (queue, start, end) => {
      total += end - start;
      if (!best || end - start > best[2] - best[1]) best = [queue, start, end];
    },
  );
  if (!best) return 0;
  const [queue, start, end] = best;
  const data = labels.data;
  for (let i = 0; i < data.length; i++) if (data[i] === value) data[i] = 0;
  for (let i = start; i < end; i++) data[queue[i]!] = value;
  return total - (end - start);
}

/** Removes a label's 3D components smaller than `minVoxels`. In place; returns voxels removed. */
export function removeSmallComponents(labels: LabelMap, value: number, minVoxels: number): number {
  let removed = 0;
  forEachComponent(
    labels,
    (v) => v === value,
    (queue, start, end) => {
      if (end - start >= minVoxels) return;
      for (let i = start; i < end; i++) labels.data[queue[i]!] = 0;
      removed += end - start;
    },
  );
  return removed;
}

/**
 * Fills a label's holes in 3D: background components that do not touch the volume's border and border only this
 * label (a cavity shared with another label is left alone). In place; returns voxels filled.
 */
export function fillHoles(labels: LabelMap, value: number): number {
  const [nx, ny] = labels.dims;
  const plane = nx * ny;
  const data = labels.data;
  let filled = 0;
  forEachComponent(
    labels,
    (v) => v === 0,
    (queue, start, end, border) => {
      if (border) return;
      for (let i = start; i < end; i++) {
        const p = queue[i]!;
        // no voxel of the component is on the border, so every neighbour exists
        for (const q of [p - 1, p + 1, p - nx, p + nx, p - plane, p + plane])
          if (data[q] !== 0 && data[q] !== value) return;
      }
      for (let i = start; i < end; i++) data[queue[i]!] = value;
      filled += end - start;
    },
  );
  return filled;
}
