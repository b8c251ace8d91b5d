/**
 * Binary erosion and dilation of one axial slice by a disc of `radiusMm` on pixels `sx` × `sy` mm, on rows packed 32
 * pixels to a word. The disc is the set of offsets (dx, dy) with (dx·sx)² + (dy·dy)·sy² ≤ r², computed as the exact
 * distance transform computed it before (the same float expression, so a pixel on the disc's edge falls on the same
 * side). Row dy of the disc is a segment of half-width h(|dy|): an erosion (dilation) by the disc is the AND (OR) over
 * dy of the rows eroded (dilated) by their segment, and a row's erosion by every half-width up to h(0) comes from one
 * shift pair per step. Work per slice is O(h(0) · rows · words), independent of how much of the slice is set:
 * replaces two exact Euclidean distance transforms per slice, ten times slower in the profile.
 */
export class DiscMorphology {
  /** words per row (pixels past nx are padding) */
  private readonly words: number;
  /** guard words on each side of a row, so a shift by up to h(0) pixels reads no index out of the row */
  private readonly guard: number;
  private readonly stride: number;
  /** h(|dy|) for |dy| = 0 … reach */
  private readonly half: Int32Array;
  private readonly reach: number;
  /** the packed rows a morphology reads; its guards and padding say what lies outside the slice */
  readonly bits: Int32Array;
  /** layer h: each row of `bits` eroded (or dilated) by the segment of half-width h */
  private readonly layers: Int32Array[];
  /** the result, words per row without guards */
  readonly out: Int32Array;

  constructor(
    private readonly nx: number,
    private readonly ny: number,
    sx: number,
    sy: number,
    radiusMm: number,
  ) {
    const r2 = radiusMm * radiusMm;
    const sy2 = sy * sy;
    const half: number[] = [];
    for (let dy = 0; dy * dy * sy2 <= r2 && dy < ny; dy++) {
      let h = 0;
      // the distance transform's own expression: (dx·sx)² + (dy·dy)·sy², rounding included
      const fits = (dx: number) => dx * sx * (dx * sx) + dy * dy * sy2 <= r2;
      while (h + 1 < nx && fits(h + 1)) h++;
      half.push(h);
    }
    this.half = Int32Array.from(half);
    this.reach = half.length - 1;
    this.words = (nx + 31) >>> 5;
    this.guard = (half[0]! >>> 5) + 1;
    this.stride = this.words + 2 * this.guard;
    this.bits = new Int32Array(ny * this.stride);
    this.layers = Array.from({ length: half[0]! + 1 }, () => new Int32Array(ny * this.words));
    this.out = new Int32Array(ny * this.words);
  }

  /** Packs the pixels of `w` with `bit` set into `bits`; pixels outside the slice read as `outside` (0 or 1). */
  pack(w: Uint8Array, bit: number, outside: 0 | 1): void {
    const { nx, ny, words, guard, stride, bits } = this;
    const fill = outside ? -1 : 0;
    for (let y = 0; y < ny; y++) {
      const row = y * stride;
      bits.fill(fill, row, row + guard);
      bits.fill(fill, row + guard + words, row + stride);
      const base = y * nx;
      for (let i = 0; i < words; i++) {
        const x0 = i << 5;
        const n = Math.min(32, nx - x0);
        let word = n < 32 && outside ? -1 << n : 0;
        for (let b = 0; b < n; b++) if (w[base + x0 + b]! & bit) word |= 1 << b;
        bits[row + guard + i] = word;
      }
    }
  }

  /** Packs `out` (the last result) into `bits` with outside pixels 0, to dilate what was eroded. */
  outToBits(): void {
    const { nx, ny, words, guard, stride, bits, out } = this;
    const last = nx & 31 ? (1 << (nx & 31)) - 1 : -1;
    for (let y = 0; y < ny; y++) {
      const row = y * stride;
      bits.fill(0, row, row + stride);
      for (let i = 0; i < words; i++) bits[row + guard + i] = out[y * words + i]!;
      bits[row + guard + words - 1]! &= last;
    }
  }

  /** `out`: pixels whose whole disc (within the slice) is set in `bits`; pack with outside 1. */
  erode(): void {
    this.segments(true);
    this.combine(true);
  }

  /** `out`: pixels whose disc holds a pixel set in `bits`; pack with outside 0. */
  dilate(): void {
    this.segments(false);
    this.combine(false);
  }

  /** Sets `bit` in `w` on the pixels set in `out` that also have `within` set (any pixel when `within` is 0). */
  unpack(w: Uint8Array, bit: number, within = 0): void {
    const { nx, ny, words, out } = this;
    for (let y = 0; y < ny; y++)
      for (let i = 0; i < words; i++) {
        let word = out[y * words + i]!;
        const base = y * nx + (i << 5);
        while (word !== 0) {
          const low = word & -word;
          const p = base + 31 - Math.clz32(low);
          if ((i << 5) + 31 - Math.clz32(low) < nx && (within === 0 || w[p]! & within)) w[p]! |= bit;
          word ^= low;
        }
      }
  }

  /** layers[h]: every row of `bits` eroded (AND) or dilated (OR) by the segment [-h, h]. */
  private segments(and: boolean): void {
    const { ny, words, guard, stride, bits, layers } = this;
    const first = layers[0]!;
    for (let y = 0; y < ny; y++) for (let i = 0; i < words; i++) first[y * words + i] = bits[y * stride + guard + i]!;
    for (let h = 1; h < layers.length; h++) {
      const prev = layers[h - 1]!,
        cur = layers[h]!;
      const q = h >>> 5,
        s = h & 31;
      for (let y = 0; y < ny; y++) {
        const row = y * stride + guard;
        for (let i = 0; i < words; i++) {
          const at = row + i;
          // bits of x+h and of x-h, for every x of word i
          const right = s === 0 ? bits[at + q]! : (bits[at + q]! >>> s) | (bits[at + q + 1]! << (32 - s));
          const left = s === 0 ? bits[at - q]! : (bits[at - q]! << s) | (bits[at - q - 1]! >>> (32 - s));
          const o = y * words + i;
          cur[o] = and ? prev[o]! & right & left : prev[o]! | right | left;
        }
      }
    }
  }

  /** out row y: the AND (OR) over dy of layer h(|dy|) at row y + dy, rows outside the slice left out. */
  private combine(and: boolean): void {
    const { ny, words, half, reach, layers, out } = this;
    out.fill(and ? -1 : 0);
    for (let dy = -reach; dy <= reach; dy++) {
      const layer = layers[half[Math.abs(dy)]!]!;
      const y0 = Math.max(0, -dy),
        y1 = Math.min(ny, ny - dy);
      for (let o = y0 * words, from = (y0 + dy) * words, end = y1 * words; o < end; o++, from++)
        out[o] = and ? out[o]! & layer[from]! : out[o]! | layer[from]!;
    }
  }
}
