import { DelineateError } from "../errors.js";

/**
 * A closed polygon on one slice, its points flat (x0, y0, x1, y1, …) in pixel-edge coordinates: pixel (i, j) covers
 * [i, i+1] × [j, j+1]. Corners are integers; a keyhole's bridge points sit half a pixel down a row (y + 0.5).
 */
export type Ring = Float64Array;

/** The box [i0, j0, i1, j1] (inclusive) of a slice that is traced. */
export type Box = readonly [number, number, number, number];

/**
 * The outlines of a binary mask on one slice (a pixel is inside when it is not 0): see `traceLabels`.
 */
export function traceMask(mask: Uint8Array, width: number, height: number): Ring[] {
  if (!width || !height) return [];
  const nonZero = new Uint8Array(256).fill(1);
  nonZero[0] = 0;
  return traceLabels(mask, width, [0, 0, width - 1, height - 1], nonZero);
}

/**
 * The outlines, in slice coordinates, of the pixels of `box` whose label `member` marks (member[label] = 1), traced
 * on pixel edges: one ring per island (4-connected; pixels touching only at a corner are two islands), its holes
 * joined to it by keyholes (a zero-width cut), which planning systems and rasterisers that fill each contour on its
 * own (plastimatch does) still read as holes. Each ring's corners are the pixel corners where the boundary turns, so
 * it encloses exactly the island's pixels.
 *
 * The rings are those d3-contour's marching squares gave (threshold 0.5, no smoothing) once each turn was moved to the
 * pixel corner it cuts, in the same order and from the same point: islands keep the mask on their left going round
 * (counter-clockwise with y down), holes the other way; each ring ends at its last corner in raster order (greatest y,
 * then x), where d3 closed it; islands come in the order their rings close, and so do the holes of each island. A
 * unit test compares the two on random and adversarial masks. Written here because d3's per-point arrays and ring
 * stitching were a third of an RTSTRUCT's encoding time (bench/SPEED.md); this walks each boundary once over a typed
 * mask of the box.
 */
export function traceLabels(
  slice: Uint8Array,
  stride: number,
  box: Box,
  member: Uint8Array,
  buffers = new TraceBuffers(),
): Ring[] {
  const [i0, j0, i1, j1] = box;
  const w = i1 - i0 + 1,
    h = j1 - j0 + 1;
  if (w <= 0 || h <= 0) return [];
  // the box with one pixel of background around it, so every boundary closes inside
  const pw = w + 2,
    ph = h + 2;
  const mask = buffers.zeroedMask(pw * ph);
  for (let j = 0; j < h; j++) {
    const from = (j0 + j) * stride + i0,
      to = (j + 1) * pw + 1;
    for (let i = 0; i < w; i++) mask[to + i] = member[slice[from + i]!]!;
  }
  const walker = new BoundaryWalker(mask, pw, buffers.zeroedEdges((pw + 1) * ph), buffers.corners);
  // Scan each row's vertical boundary edges left to right. A ring's first edge in this order is the left edge of its
  // island's top-left pixel (background → mask) or, for a hole, the left edge of the hole's top-left pixel (mask →
  // background); an edge met again was traced with its ring. So a new ring met mask-first is an island's, and one met
  // background-first is a hole of the island whose run of pixels the scan is in.
  let island = -1;
  for (let y = 1; y < ph - 1; y++) {
    const row = y * pw;
    for (let x = 1; x < pw; x++) {
      const inside = mask[row + x]!;
      if (mask[row + x - 1] === inside) continue;
      const seen = walker.ringOfEdge[y * (pw + 1) + x]!;
      if (inside) island = seen ? walker.islandOf(seen - 1) : walker.trace(x, y, SOUTH, -1);
      else if (!seen) walker.trace(x, y + 1, NORTH, island);
    }
  }
  buffers.corners = walker.corners;
  return walker.rings(i0 - 1, j0 - 1);
}

/**
 * Scratch arrays a caller tracing many boxes (each ROI on each slice) passes to every call, so that they are
 * allocated once and grown when needed rather than made and collected per box.
 */
export class TraceBuffers {
  private mask = new Uint8Array(0);
  private edges = new Int32Array(0);
  /** corner coordinates of the rings being traced */
  corners: Int32Array = new Int32Array(256);

  /** n bytes, zeroed */
  zeroedMask(n: number): Uint8Array {
    if (this.mask.length < n) this.mask = new Uint8Array(Math.max(n, this.mask.length * 2));
    else this.mask.fill(0, 0, n);
    return this.mask.subarray(0, n);
  }

  /** n integers, zeroed */
  zeroedEdges(n: number): Int32Array {
    if (this.edges.length < n) this.edges = new Int32Array(Math.max(n, this.edges.length * 2));
    else this.edges.fill(0, 0, n);
    return this.edges.subarray(0, n);
  }
}

// directions, turning clockwise on screen (y down): east, south, west, north; a left turn is d + 3 (mod 4)
const SOUTH = 1,
  NORTH = 3;
const DX = [1, 0, -1, 0] as const,
  DY = [0, 1, 0, -1] as const;

/** The rings of one padded mask, as they are traced: corners in one growing buffer, one record per ring. */
class BoundaryWalker {
  private used = 0;
  /** per ring: first corner, corner count, index of its last corner in raster order, its island, whether a hole */
  private readonly starts: number[] = [];
  private readonly counts: number[] = [];
  private readonly lasts: number[] = [];
  private readonly islands: number[] = [];
  private readonly holes: boolean[] = [];
  /** per island, its outer ring */
  private readonly outerRing: number[] = [];
  /** offsets of the pixels around a corner, from the one south-east of it: NE, SE, SW, NW */
  private readonly around: readonly [number, number, number, number];

  constructor(
    private readonly mask: Uint8Array,
    private readonly pw: number,
    /** per vertical pixel edge (x between pixels x−1 and x on row y: y·(pw+1) + x), 1 + the ring through it, or 0 */
    readonly ringOfEdge: Int32Array,
    /** corner coordinates, grown as rings are traced */
    public corners: Int32Array,
  ) {
    this.around = [-pw, 0, -1, -pw - 1];
  }

  islandOf(ring: number): number {
    return this.islands[ring]!;
  }

  /**
   * Walks the ring through corner (x, y) leaving it in `direction`, the mask on its left; a hole of `island` when
   * that is ≥ 0, else the outer ring of a new island. Returns the ring's island. At a corner where two mask pixels
   * touch diagonally the walk turns left, round the pixel it was following, so such pixels stay apart.
   */
  trace(x0: number, y0: number, direction: number, island: number): number {
    const { mask, pw, around } = this;
    const ring = this.starts.length;
    const start = this.used;
    const hole = island >= 0;
    const own = hole ? island : this.outerRing.length;
    if (!hole) this.outerRing.push(ring);
    let x = x0,
      y = y0,
      d = direction,
      last = -1,
      lastKey = -1;
    do {
      if (d === SOUTH) this.ringOfEdge[y * (pw + 1) + x] = ring + 1;
      else if (d === NORTH) this.ringOfEdge[(y - 1) * (pw + 1) + x] = ring + 1;
      x += DX[d]!;
      y += DY[d]!;
      // the pixels ahead of the corner, on the left and on the right of the way it came
      const p = y * pw + x;
      let turn = d;
      if (!mask[p + around[d]!]) turn = (d + 3) & 3;
      else if (mask[p + around[(d + 1) & 3]!]) turn = (d + 1) & 3;
      if (turn !== d) {
        const key = y * (pw + 1) + x;
        if (key > lastKey) {
          lastKey = key;
          last = this.used - start;
        }
        this.push(x, y);
        d = turn;
      }
    } while (x !== x0 || y !== y0 || d !== direction);
    this.starts.push(start);
    this.counts.push(this.used - start);
    this.lasts.push(last);
    this.islands.push(own);
    this.holes.push(hole);
    return own;
  }

  private push(x: number, y: number): void {
    const at = this.used * 2;
    if (at + 2 > this.corners.length) {
      const grown = new Int32Array(this.corners.length * 2);
      grown.set(this.corners);
      this.corners = grown;
    }
    this.corners[at] = x;
    this.corners[at + 1] = y;
    this.used++;
  }

  /** Ring `r`'s corners from the one after its last in raster order, shifted by (dx, dy). */
  private ring(r: number, dx: number, dy: number): Float64Array {
    const start = this.starts[r]!,
      n = this.counts[r]!,
      first = this.lasts[r]! + 1;
    const out = new Float64Array(n * 2);
    for (let k = 0; k < n; k++) {
      const c = (start + ((first + k) % n)) * 2;
      out[k * 2] = this.corners[c]! + dx;
      out[k * 2 + 1] = this.corners[c + 1]! + dy;
    }
    return out;
  }

  /** Each island's outer ring with its holes joined, islands and holes in the order their rings end in raster order. */
  rings(dx: number, dy: number): Ring[] {
    const n = this.starts.length;
    // a ring ends (as d3 closed it) at its last corner in raster order, and no two rings end at the same corner
    const endKey = (r: number) => {
      const c = (this.starts[r]! + this.lasts[r]!) * 2;
      return this.corners[c + 1]! * (this.pw + 1) + this.corners[c]!;
    };
    const order = Array.from({ length: n }, (_, r) => r).sort((a, b) => endKey(a) - endKey(b));
    const holesOf = new Map<number, number[]>();
    for (const r of order) {
      if (!this.holes[r]) continue;
      const list = holesOf.get(this.islands[r]!);
      if (list) list.push(r);
      else holesOf.set(this.islands[r]!, [r]);
    }
    const out: Ring[] = [];
    for (const r of order) {
      if (this.holes[r]) continue;
      const outer = this.ring(r, dx, dy);
      const holes = holesOf.get(this.islands[r]!);
      out.push(
        holes
          ? joinHoles(
              outer,
              holes.map((hr) => this.ring(hr, dx, dy)),
            )
          : outer,
      );
    }
    return out;
  }
}

/** A ring's vertical edge furthest right (the first of those): [index of its start, x, its lower y]. */
function rightmostEdge(ring: ArrayLike<number>): [number, number, number] {
  const n = ring.length / 2;
  let best: [number, number, number] | undefined;
  for (let i = 0; i < n; i++) {
    const ax = ring[i * 2]!,
      ay = ring[i * 2 + 1]!,
      b = ((i + 1) % n) * 2;
    const bx = ring[b]!,
      by = ring[b + 1]!;
    if (ax === bx && ay !== by && (!best || ax > best[1])) best = [i, ax, Math.min(ay, by)];
  }
  // a closed ring of pixel edges always has vertical edges
  if (!best) throw new DelineateError("DLN_ERR_INTERNAL", "a contour ring with no vertical edge");
  return best;
}

/**
 * Joins holes into their outer ring (Eberly's bridge: holes taken right to left, each joined along a row half a
 * pixel into its rightmost edge to the nearest edge of the ring on its right, so no bridge crosses a hole).
 */
function joinHoles(outer: Ring, holes: Ring[]): Ring {
  let ring: number[] = Array.from(outer);
  const byEdge = holes.map((hole) => ({ hole, edge: rightmostEdge(hole) })).sort((a, b) => b.edge[1] - a.edge[1]);
  for (const { hole, edge } of byEdge) {
    const [hi, hx, hy0] = edge;
    const y = hy0 + 0.5;
    let target = -1, // index in ring of the edge's start
      targetX = 0;
    const n = ring.length / 2;
    for (let i = 0; i < n; i++) {
      const x = ring[i * 2]!,
        b = ((i + 1) % n) * 2;
      if (x !== ring[b] || ring[i * 2 + 1] === ring[b + 1]) continue;
      const y0 = Math.min(ring[i * 2 + 1]!, ring[b + 1]!),
        y1 = Math.max(ring[i * 2 + 1]!, ring[b + 1]!);
      if (x > hx && y0 < y && y < y1 && (target < 0 || x < targetX)) {
        target = i;
        targetX = x;
      }
    }
    // impossible for a hole inside its island; refused rather than writing a contour that crosses itself
    if (target < 0)
      throw new DelineateError("DLN_ERR_OUTPUT_INVALID", "a hole with no enclosing edge to its right", {
        holeX: hx,
        holeY: y,
      });
    // round the hole from its split edge's end back to its start
    const around = [...hole.subarray((hi + 1) * 2), ...hole.subarray(0, (hi + 1) * 2)];
    ring = [
      ...ring.slice(0, (target + 1) * 2),
      targetX,
      y,
      hx,
      y,
      ...around,
      hx,
      y,
      targetX,
      y,
      ...ring.slice((target + 1) * 2),
    ];
  }
  return Float64Array.from(ring);
}
