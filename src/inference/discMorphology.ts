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
  /** a guard word on each side of a row, so a shift by a pixel reads no index out of the row */
  private readonly guard: number;
  private readonly stride: number;
  /** h(|dy|) for |dy| = 0 … reach */
  private readonly half: Int32Array;
  private readonly reach: number;
  /** the packed rows a morphology reads; its guards and padding say what lies outside the slice */
  readonly bits: Int32Array;
  /** layer h: each row of `bits` eroded (or dilated) by the segment of half-width h, guarded as `bits` are */
  private readonly layers: Int32Array[];
  /** the result, rows guarded as `bits` are (guards and padding meaningless) */
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
    this.guard = 1;
    this.stride = this.words + 2 * this.guard;
    this.bits = new Int32Array(ny * this.stride);
    this.layers = Array.from({ length: half[0]! + 1 }, () => new Int32Array(ny * this.stride));
    this.out = new Int32Array(ny * this.stride);
  }

  /** Loads a packed slice (rows of words as bitRows packs them, from src[offset]); outside pixels read as `outside`. */
  load(src: Int32Array, offset: number, outside: 0 | 1): void {
    const { nx, ny, words, guard, stride, bits } = this;
    const fill = outside ? -1 : 0;
    const pad = outside && nx & 31 ? -1 << (nx & 31) : 0;
    for (let y = 0; y < ny; y++) {
      const row = y * stride;
      bits.fill(fill, row, row + guard);
      bits.fill(fill, row + guard + words, row + stride);
      bits.set(src.subarray(offset + y * words, offset + (y + 1) * words), row + guard);
      bits[row + guard + words - 1]! |= pad;
    }
  }

  /** dst[to…] = `out` AND mask[from…], as a packed slice. */
  outAnd(mask: Int32Array, from: number, dst: Int32Array, to: number): void {
    const { ny, words, guard, stride, out } = this;
    for (let y = 0; y < ny; y++)
      for (let i = 0, o = y * stride + guard, p = y * words; i < words; i++, o++, p++)
        dst[to + p] = out[o]! & mask[from + p]!;
  }

  /** Moves `out` (the last result) into `bits` with outside pixels 0, to dilate what was eroded. */
  outToBits(): void {
    const { nx, ny, words, guard, stride, bits, out } = this;
    const last = nx & 31 ? (1 << (nx & 31)) - 1 : -1;
    bits.set(out);
    for (let y = 0; y < ny; y++) {
      const row = y * stride;
      bits[row + guard - 1] = bits[row + guard + words] = 0;
      bits[row + guard + words - 1]! &= last;
    }
  }

  /** `out`: pixels whose whole disc (within the slice) is set in `bits`; load with outside 1. */
  erode(): void {
    this.segments(true);
    this.combine(true);
  }

  /** `out`: pixels whose disc holds a pixel set in `bits`; load with outside 0. */
  dilate(): void {
    this.segments(false);
    this.combine(false);
  }

  /**
   * layers[h]: every row of `bits` eroded (AND) or dilated (OR) by the segment [-h, h], each from the one before
   * shifted a pixel either way (the segment [-h, h] is [-(h-1), h-1] moved by -1 and by +1, with its middle).
   */
  private segments(and: boolean): void {
    const { ny, guard, stride, bits, layers } = this;
    layers[0]!.set(bits);
    const fill = and ? -1 : 0;
    for (let h = 1; h < layers.length; h++) {
      const prev = layers[h - 1]!,
        cur = layers[h]!;
      for (let y = 0; y < ny; y++) {
        const row = y * stride;
        cur[row] = cur[row + stride - 1] = fill;
        if (and) segmentAnd(prev, cur, row + guard, row + stride - guard);
        else segmentOr(prev, cur, row + guard, row + stride - guard);
      }
    }
  }

  /** out row y: the AND (OR) over dy of layer h(|dy|) at row y + dy, rows outside the slice left out. */
  private combine(and: boolean): void {
    const { ny, stride, half, reach, layers, out } = this;
    out.fill(and ? -1 : 0);
    for (let dy = -reach; dy <= reach; dy++) {
      const layer = layers[half[Math.abs(dy)]!]!;
      // rows y with y + dy inside the slice, guards and all: one contiguous run of words
      const a = Math.max(0, -dy) * stride,
        b = Math.min(ny, ny - dy) * stride,
        shift = dy * stride;
      if (and) for (let o = a; o < b; o++) out[o]! &= layer[o + shift]!;
      else for (let o = a; o < b; o++) out[o]! |= layer[o + shift]!;
    }
  }
}

/** cur[a, b) = prev AND prev shifted a pixel either way (bit x: prev's bits x - 1, x and x + 1). */
function segmentAnd(prev: Int32Array, cur: Int32Array, a: number, b: number): void {
  for (let i = a; i < b; i++) {
    const p = prev[i]!;
    cur[i] = p & ((p >>> 1) | (prev[i + 1]! << 31)) & ((p << 1) | (prev[i - 1]! >>> 31));
  }
}

/** cur[a, b) = prev OR prev shifted a pixel either way. */
function segmentOr(prev: Int32Array, cur: Int32Array, a: number, b: number): void {
  for (let i = a; i < b; i++) {
    const p = prev[i]!;
    cur[i] = p | (p >>> 1) | (prev[i + 1]! << 31) | (p << 1) | (prev[i - 1]! >>> 31);
  }
}
