/**
 * Rows of pixels packed 32 to a word (bit x & 31 of word x >>> 5), the pixels past the row's end 0: what the body
 * outline keeps per slice instead of a byte per voxel, so that a pass over a slice is a pass over its words, and
 * regions are found as runs between the words' transitions.
 */

/** Words per packed row of `nx` pixels. */
export const wordsPerRow = (nx: number): number => (nx + 31) >>> 5;

/** Index of the lowest set bit of a non-zero word. */
const lowest = (word: number): number => 31 - Math.clz32(word & -word);

/**
 * Appends the runs of set bits (of clear bits when `clear`) of the row at bits[row…] to `runs` as pairs
 * [x0, x1), from index n; returns the new n.
 */
export function rowRuns(
  bits: Int32Array,
  row: number,
  nx: number,
  clear: boolean,
  runs: Int32Array,
  n: number,
): number {
  const words = wordsPerRow(nx);
  const flip = clear ? -1 : 0;
  let inRun = false;
  for (let i = 0; i < words; i++) {
    let word = bits[row + i]! ^ flip;
    if (i === words - 1 && nx & 31) word &= (1 << (nx & 31)) - 1;
    // alternately the next set bit (a run starts) and the next clear bit (it ends) from bit b
    for (let b = 0; b < 32; ) {
      const m = (inRun ? ~word : word) & (-1 << b);
      if (m === 0) break;
      b = lowest(m);
      runs[n++] = (i << 5) + b;
      inRun = !inRun;
    }
  }
  if (inRun) runs[n++] = nx;
  return n;
}

/** Sets bits [x0, x1) of the row at bits[row…]. */
export function setBits(bits: Int32Array, row: number, x0: number, x1: number): void {
  const first = x0 >>> 5,
    last = (x1 - 1) >>> 5;
  const low = -1 << (x0 & 31),
    high = -1 >>> (31 - ((x1 - 1) & 31));
  if (first === last) {
    bits[row + first]! |= low & high;
    return;
  }
  bits[row + first]! |= low;
  for (let i = first + 1; i < last; i++) bits[row + i] = -1;
  bits[row + last]! |= high;
}

/** True when a bit of [x0, x1) is set in the row at bits[row…]. */
export function anyBits(bits: Int32Array, row: number, x0: number, x1: number): boolean {
  const first = x0 >>> 5,
    last = (x1 - 1) >>> 5;
  const low = -1 << (x0 & 31),
    high = -1 >>> (31 - ((x1 - 1) & 31));
  if (first === last) return (bits[row + first]! & low & high) !== 0;
  if (bits[row + first]! & low || bits[row + last]! & high) return true;
  for (let i = first + 1; i < last; i++) if (bits[row + i] !== 0) return true;
  return false;
}

/** True when any word of bits[from, to) is non-zero. */
export function anyWord(bits: Int32Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bits[i] !== 0) return true;
  return false;
}
