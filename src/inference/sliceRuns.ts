import { rowRuns, setBits, wordsPerRow } from "./bitRows.js";

/**
 * The 4-connected regions of one axial slice, as runs: each row's runs of pixels whose bits under `mask` equal `want`,
 * joined with the runs they overlap in the row before by a union-find. Work is per run, not per pixel, and the
 * buffers are sized once for the worst slice (every other pixel a run), so labelling allocates nothing.
 */
export class SliceRuns {
  /** first pixel (slice index) and one past the last of each run */
  readonly start: Int32Array;
  readonly end: Int32Array;
  private readonly parent: Int32Array;
  /** a byte and an int per run for the caller (per root, say), cleared to 0 and -1 by `label` */
  readonly flag: Uint8Array;
  readonly tag: Int32Array;
  /** runs of row y are [rowStart[y], rowStart[y + 1]) */
  readonly rowStart: Int32Array;
  n = 0;
  /** one row's runs as [x0, x1) pairs, scratch of labelBits */
  private readonly pairs: Int32Array;

  constructor(
    private readonly nx: number,
    private readonly ny: number,
  ) {
    const most = ny * ((nx + 1) >>> 1);
    [this.start, this.end, this.parent] = [new Int32Array(most), new Int32Array(most), new Int32Array(most)];
    this.flag = new Uint8Array(most);
    this.tag = new Int32Array(most);
    this.rowStart = new Int32Array(ny + 1);
    this.pairs = new Int32Array(nx + 2);
  }

  /** Labels the runs of `w` (one slice) whose pixels p have (w[p] & mask) === want. */
  label(w: Uint8Array, mask: number, want: number): void {
    const { nx, ny, start, end, parent, rowStart } = this;
    let n = 0;
    for (let y = 0; y < ny; y++) {
      rowStart[y] = n;
      const base = y * nx;
      for (let x = 0; x < nx; x++) {
        if ((w[base + x]! & mask) !== want) continue;
        const x0 = x;
        while (x + 1 < nx && (w[base + x + 1]! & mask) === want) x++;
        start[n] = base + x0;
        end[n] = base + x + 1;
        parent[n] = n;
        n++;
      }
      if (y > 0) this.joinRows(rowStart[y - 1]!, rowStart[y]!, n);
    }
    rowStart[ny] = n;
    this.n = n;
    this.flag.fill(0, 0, n);
    this.tag.fill(-1, 0, n);
  }

  /** Labels the runs of set bits (of clear bits when `clear`) of a packed slice starting at bits[offset]. */
  labelBits(bits: Int32Array, offset: number, clear: boolean): void {
    const { nx, ny, start, end, parent, rowStart, pairs } = this;
    const words = wordsPerRow(nx);
    let n = 0;
    for (let y = 0; y < ny; y++) {
      rowStart[y] = n;
      const count = rowRuns(bits, offset + y * words, nx, clear, pairs, 0);
      for (let i = 0; i < count; i += 2, n++) {
        start[n] = y * nx + pairs[i]!;
        end[n] = y * nx + pairs[i + 1]!;
        parent[n] = n;
      }
      if (y > 0) this.joinRows(rowStart[y - 1]!, rowStart[y]!, n);
    }
    rowStart[ny] = n;
    this.n = n;
    this.flag.fill(0, 0, n);
    this.tag.fill(-1, 0, n);
  }

  /** Sets the bits of run i, which lies in row y, in the packed slice starting at bits[offset]. */
  setRun(bits: Int32Array, offset: number, i: number, y: number): void {
    const row = y * this.nx;
    setBits(bits, offset + y * wordsPerRow(this.nx), this.start[i]! - row, this.end[i]! - row);
  }

  /** The region's representative run. */
  root(i: number): number {
    return findRoot(this.parent, i);
  }

  /** Sets `bit` in `w` on every pixel of run i. */
  fill(w: Uint8Array, i: number, bit: number): void {
    for (let p = this.start[i]!; p < this.end[i]!; p++) w[p]! |= bit;
  }

  /** Joins each run of the row [b0, b1) with the runs of the row before, [a0, b0), sharing a column with it. */
  private joinRows(a0: number, b0: number, b1: number): void {
    const { nx, start, end, parent } = this;
    let j = a0;
    for (let i = b0; i < b1; i++) {
      const x0 = start[i]! - nx,
        x1 = end[i]! - nx; // run i moved up one row
      while (j < b0 && end[j]! <= x0) j++;
      for (let k = j; k < b0 && start[k]! < x1; k++) {
        const ra = this.root(i),
          rb = this.root(k);
        if (ra !== rb) parent[ra] = rb;
      }
    }
  }
}

/**
 * Sets `body` on every pixel of a slice that the slice's border cannot reach through pixels without it (4-connected):
 * the background regions touching no border are holes.
 */
export function fillHolesByRuns(w: Uint8Array, nx: number, ny: number, runs: SliceRuns, body: number): void {
  runs.label(w, body, 0);
  const { n, start, end, flag: border } = runs;
  const lastRow = (ny - 1) * nx;
  for (let i = 0; i < n; i++) {
    const s = start[i]!,
      e = end[i]!;
    if (s < nx || s >= lastRow || s % nx === 0 || e % nx === 0) border[runs.root(i)] = 1;
  }
  for (let i = 0; i < n; i++) if (!border[runs.root(i)]) runs.fill(w, i, body);
}

/**
 * Sets every bit of a packed slice (at bits[offset]) that the slice's border cannot reach through clear bits
 * (4-connected): the clear regions touching no border are holes.
 */
export function fillHolesInBits(bits: Int32Array, offset: number, nx: number, ny: number, runs: SliceRuns): void {
  runs.labelBits(bits, offset, true);
  const { start, end, rowStart, flag: border } = runs;
  for (let y = 0; y < ny; y++)
    for (let i = rowStart[y]!; i < rowStart[y + 1]!; i++)
      if (y === 0 || y === ny - 1 || start[i] === y * nx || end[i] === (y + 1) * nx) border[runs.root(i)] = 1;
  for (let y = 0; y < ny; y++)
    for (let i = rowStart[y]!; i < rowStart[y + 1]!; i++) if (!border[runs.root(i)]) runs.setRun(bits, offset, i, y);
}

/** The representative of element i in a union-find forest (`parent[r] === r` at a root), with path halving. */
export function findRoot(parent: Int32Array, i: number): number {
  while (parent[i] !== i) {
    parent[i] = parent[parent[i]!]!;
    i = parent[i]!;
  }
  return i;
}
