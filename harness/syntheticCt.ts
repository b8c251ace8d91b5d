/**
 * CT-like volumes (HU, x fastest, axial slices along z) for the body outline's tests and benchmark: what the outline
 * must cope with on a real scan, drawn from a seed so a failure can be replayed.
 */

/** A small deterministic generator (mulberry32): uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A patient on a table: an elliptical trunk whose size changes along z, lungs and bowel gas inside it, two legs below
 * it joined by a thin strand on some slices, arms beside it
 * with a gap of a few pixels (touching on some slices), a thin immobilisation shell around it, a table under it with
 * rails, a blob cut by the field of view's edge, specks in the air, and noise on everything.
 */
export function patientCt([nx, ny, nz]: readonly [number, number, number], seed: number): Float32Array {
  const rnd = seededRandom(seed);
  const hu = new Float32Array(nx * ny * nz);
  const cx = nx / 2,
    cy = ny * 0.45;
  for (let k = 0; k < nz; k++) {
    const t = nz > 1 ? k / (nz - 1) : 0.5;
    const ax = nx * (0.3 + 0.08 * Math.sin(t * 3)),
      ay = ny * (0.2 + 0.05 * Math.cos(t * 2));
    const armGap = 2 + Math.round(3 * Math.abs(Math.sin(t * 7))) - (k % 17 === 0 ? 3 : 0);
    const tableY = Math.min(ny - 3, Math.round(cy + ay + 4));
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        const ex = (i - cx) / ax,
          ey = (j - cy) / ay;
        const e = ex * ex + ey * ey;
        let v = -1000 + 20 * (rnd() - 0.5);
        // below the pelvis two legs: a gap down the middle, bridged by a strand of skin on some slices
        const legGap = t < 0.25 && Math.abs(i - cx) < nx * 0.06 && !(k % 5 === 0 && Math.abs(j - cy) < 1.5);
        if (e <= 1) {
          v = 40 + 60 * (rnd() - 0.5);
          const lung = ((Math.abs(i - cx) - ax * 0.45) / (ax * 0.3)) ** 2 + ((j - cy + ay * 0.1) / (ay * 0.55)) ** 2;
          if (t > 0.4 && lung <= 1) v = -800 + 100 * (rnd() - 0.5);
          if (t >= 0.25 && t < 0.4 && ((i - cx - ax * 0.2) / 6) ** 2 + ((j - cy) / 4) ** 2 <= 1) v = -950; // bowel gas
        } else if (e <= 1.08 && e >= 1.05 && j < cy) v = 200; // the shell, a few pixels off the skin
        if (legGap && e <= 1.1) v = -1000; // through the shell too, or the gap would be a hole
        const armX = Math.abs(i - cx) - ax - armGap - nx * 0.05;
        if (armX ** 2 / (nx * 0.05) ** 2 + ((j - cy) / (ay * 0.35)) ** 2 <= 1) v = 50 + 60 * (rnd() - 0.5);
        if (j === tableY || j === tableY + 1 || (j > tableY && j < tableY + 4 && Math.abs(i - cx) > nx * 0.4)) v = 300;
        if ((i - 2) ** 2 + (j - ny * 0.2) ** 2 <= (nx * 0.04) ** 2) v = 60; // cut by the field of view
        if (rnd() < 0.01) v = 100; // speck
        hu[(k * ny + j) * nx + i] = v;
      }
  }
  return hu;
}

/**
 * Random blobs of tissue in air with holes, thin strands and noise: shapes no scan has, for edge cases (ties on the
 * disc's boundary, pieces joined by one pixel, slices full of tissue or empty).
 */
export function blobCt([nx, ny, nz]: readonly [number, number, number], seed: number): Float32Array {
  const rnd = seededRandom(seed);
  const hu = new Float32Array(nx * ny * nz).fill(-1000);
  const blobs = 3 + Math.floor(rnd() * 8);
  for (let b = 0; b < blobs; b++) {
    const [bx, by, bz] = [rnd() * nx, rnd() * ny, rnd() * nz];
    const [rx, ry, rz] = [2 + rnd() * nx * 0.4, 2 + rnd() * ny * 0.4, 1 + rnd() * nz];
    const value = rnd() < 0.75 ? 40 : -1000; // some blobs carve holes into earlier ones
    for (let k = 0; k < nz; k++)
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++)
          if (((i - bx) / rx) ** 2 + ((j - by) / ry) ** 2 + ((k - bz) / rz) ** 2 <= 1)
            hu[(k * ny + j) * nx + i] = value;
  }
  const strands = Math.floor(rnd() * 6);
  for (let s = 0; s < strands; s++) {
    const [j, k] = [Math.floor(rnd() * ny), Math.floor(rnd() * nz)];
    for (let i = 0; i < nx; i++) hu[(k * ny + j) * nx + i] = 40;
  }
  if (rnd() < 0.3) hu.fill(40, 0, nx * ny); // a slice of tissue only
  const noise = rnd() * 0.2;
  for (let p = 0; p < hu.length; p++) if (rnd() < noise) hu[p] = rnd() < 0.5 ? 40 : -1000;
  for (let p = 0; p < hu.length; p++) hu[p] = hu[p]! + 400 * (rnd() - 0.5);
  return hu;
}
