/**
 * The classical body outline the model was trained to reproduce (training/train_ct_body.py): HU > -500,
 * holes filled per axial slice, largest 3D component (6-connected). Written independently of src/ so the
 * test compares the model's SEG against it.
 */
export function classicalBodyMask(hu: Float32Array, [nx, ny, nz]: readonly [number, number, number]): Uint8Array {
  const plane = nx * ny;
  const mask = new Uint8Array(hu.length);
  for (let i = 0; i < hu.length; i++) mask[i] = hu[i]! > -500 ? 1 : 0;
  // fill holes: background not reachable from the slice border becomes foreground
  const outside = new Uint8Array(plane);
  const stack: number[] = [];
  for (let k = 0; k < nz; k++) {
    const m = mask.subarray(k * plane, (k + 1) * plane);
    outside.fill(0);
    for (let i = 0; i < nx; i++) stack.push(i, (ny - 1) * nx + i);
    for (let j = 0; j < ny; j++) stack.push(j * nx, j * nx + nx - 1);
    while (stack.length) {
      const p = stack.pop()!;
      if (outside[p] || m[p]) continue;
      outside[p] = 1;
      const x = p % nx,
        y = (p - x) / nx;
      if (x > 0) stack.push(p - 1);
      if (x < nx - 1) stack.push(p + 1);
      if (y > 0) stack.push(p - nx);
      if (y < ny - 1) stack.push(p + nx);
    }
    for (let p = 0; p < plane; p++) if (!outside[p]) m[p] = 1;
  }
  // largest 3D component
  const comp = new Int32Array(hu.length);
  let best = 0,
    bestSize = 0,
    id = 0;
  for (let s = 0; s < hu.length; s++) {
    if (!mask[s] || comp[s]) continue;
    id++;
    let size = 0;
    stack.push(s);
    comp[s] = id;
    while (stack.length) {
      const p = stack.pop()!;
      size++;
      const x = p % nx,
        y = ((p - x) / nx) % ny,
        z = Math.floor(p / plane);
      for (const [q, ok] of [
        [p - 1, x > 0],
        [p + 1, x < nx - 1],
        [p - nx, y > 0],
        [p + nx, y < ny - 1],
        [p - plane, z > 0],
        [p + plane, z < nz - 1],
      ] as const) {
        if (ok && mask[q] && !comp[q]) {
          comp[q] = id;
          stack.push(q);
        }
      }
    }
    if (size > bestSize) [best, bestSize] = [id, size];
  }
  const out = new Uint8Array(hu.length);
  for (let i = 0; i < hu.length; i++) out[i] = comp[i] === best ? 1 : 0;
  return out;
}

export function dice(a: Uint8Array, b: Uint8Array): number {
  let inter = 0,
    sa = 0,
    sb = 0;
  for (let i = 0; i < a.length; i++) {
    inter += a[i]! & b[i]!;
    sa += a[i]!;
    sb += b[i]!;
  }
  return (2 * inter) / Math.max(1, sa + sb);
}
