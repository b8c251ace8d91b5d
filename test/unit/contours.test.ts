import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { contours } from "d3-contour";
import { type Ring, traceLabels, traceMask } from "../../src/outputs/contours.js";

type Point = [number, number];

/**
 * The reference the tracer replaced: d3-contour's marching squares (threshold 0.5, no smoothing), each ring's edge
 * midpoints turned into the pixel corners they cut, holes joined by keyholes (the previous src/outputs/contours.ts).
 */
function reference(mask: Uint8Array, width: number, height: number): Point[][] {
  const [polygons] = contours().size([width, height]).thresholds([0.5]).smooth(false)(mask as unknown as number[]);
  return (polygons?.coordinates ?? []).map((polygon) => {
    const [outer, ...holes] = polygon.map((ring) => toPixelCorners(ring as Point[]));
    return joinHoles(outer!, holes);
  });
}

function toPixelCorners(ring: Point[]): Point[] {
  const pts = ring.slice(0, -1);
  const corners: Point[] = [];
  for (let i = 0; i < pts.length; i++) {
    const [px, py] = pts[i]!;
    const [qx, qy] = pts[(i + 1) % pts.length]!;
    const pVertical = Number.isInteger(px),
      qVertical = Number.isInteger(qx);
    if (pVertical && !qVertical) corners.push([px, qy]);
    else if (!pVertical && qVertical) corners.push([qx, py]);
  }
  return corners;
}

function verticalEdges(ring: Point[]): [number, number, number, number][] {
  const out: [number, number, number, number][] = [];
  for (let i = 0; i < ring.length; i++) {
    const [ax, ay] = ring[i]!,
      [bx, by] = ring[(i + 1) % ring.length]!;
    if (ax === bx && ay !== by) out.push([i, ax, Math.min(ay, by), Math.max(ay, by)]);
  }
  return out;
}

function joinHoles(outer: Point[], holes: Point[][]): Point[] {
  const rightmost = (r: Point[]) => verticalEdges(r).reduce((best, e) => (e[1] > best[1] ? e : best));
  let ring = outer;
  for (const hole of [...holes].sort((a, b) => rightmost(b)[1] - rightmost(a)[1])) {
    const [hi, hx, hy0] = rightmost(hole);
    const y = hy0 + 0.5;
    let target: [number, number] | undefined;
    for (const [i, x, y0, y1] of verticalEdges(ring))
      if (x > hx && y0 < y && y < y1 && (!target || x < target[1])) target = [i, x];
    assert.ok(target, "reference: a hole with an enclosing edge");
    const H: Point = [hx, y],
      I: Point = [target[1], y];
    const around = [...hole.slice(hi + 1), ...hole.slice(0, hi + 1)];
    ring = [...ring.slice(0, target[0] + 1), I, H, ...around, H, I, ...ring.slice(target[0] + 1)];
  }
  return ring;
}

const points = (ring: Ring): Point[] =>
  Array.from({ length: ring.length / 2 }, (_, k) => [ring[2 * k]!, ring[2 * k + 1]!]);

/** Even-odd point-in-polygon over all rings, for pixel centres (i + 0.5, j + 0.5): never on an edge. */
function rasterise(rings: Point[][], width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let j = 0; j < height; j++) {
    for (let i = 0; i < width; i++) {
      const [x, y] = [i + 0.5, j + 0.5];
      let inside = false;
      for (const r of rings) {
        for (let a = 0, b = r.length - 1; a < r.length; b = a++) {
          const [xa, ya] = r[a]!,
            [xb, yb] = r[b]!;
          if (ya > y !== yb > y && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) inside = !inside;
        }
      }
      out[j * width + i] = inside ? 1 : 0;
    }
  }
  return out;
}

/** Shoelace area of a ring (keyhole bridges are traversed both ways and add nothing). */
const area = (r: Point[]) =>
  r.reduce((a, [x1, y1], k) => a + x1 * r[(k + 1) % r.length]![1] - r[(k + 1) % r.length]![0] * y1, 0) / 2;

function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
}

/** Masks that stress the tracing: holes in islands in holes, diagonal contacts, single pixels, the border. */
function adversarialMasks(): { name: string; mask: Uint8Array; w: number; h: number }[] {
  const out: { name: string; mask: Uint8Array; w: number; h: number }[] = [];
  const make = (name: string, w: number, h: number, inside: (i: number, j: number) => boolean) => {
    const mask = new Uint8Array(w * h);
    for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) mask[j * w + i] = inside(i, j) ? 1 : 0;
    out.push({ name, mask, w, h });
  };
  make("empty", 6, 5, () => false);
  make("full (touches every border)", 6, 5, () => true);
  make("one pixel", 1, 1, () => true);
  make("one pixel, off", 1, 1, () => false);
  make("a row", 7, 1, (i) => i !== 3);
  make("a column", 1, 7, (_, j) => j % 3 !== 1);
  make("checkerboard (every contact diagonal)", 9, 8, (i, j) => (i + j) % 2 === 0);
  make("checkerboard, other phase", 8, 9, (i, j) => (i + j) % 2 === 1);
  make("one-pixel islands", 11, 11, (i, j) => i % 3 === 1 && j % 3 === 1);
  make(
    "nested squares (islands in holes in islands)",
    15,
    15,
    (i, j) => Math.max(Math.abs(i - 7), Math.abs(j - 7)) % 2 === 0,
  );
  make("nested squares, touching the border", 13, 13, (i, j) => Math.max(Math.abs(i - 6), Math.abs(j - 6)) % 2 === 0);
  make("one-pixel holes", 9, 9, (i, j) => !(i % 2 === 1 && j % 2 === 1));
  make(
    "holes touching diagonally",
    8,
    8,
    (i, j) => !((i === 2 && j === 2) || (i === 3 && j === 3) || (i === 5 && j === 4)),
  );
  make(
    "hole touching the outside at a corner",
    6,
    6,
    (i, j) => i < 4 && j < 4 && !(i === 3 && j === 3) && !(i === 2 && j === 2),
  );
  make("diagonal line", 7, 7, (i, j) => i === j);
  make("anti-diagonal line", 7, 7, (i, j) => i + j === 6);
  make("diamond ring", 13, 13, (i, j) => {
    const d = Math.abs(i - 6) + Math.abs(j - 6);
    return d >= 3 && d <= 5;
  });
  make("comb", 12, 6, (i, j) => j === 5 || i % 2 === 0);
  make("spiral", 11, 11, (i, j) => {
    const spiral = [
      "###########",
      "#.........#",
      "#.#######.#",
      "#.#.....#.#",
      "#.#.###.#.#",
      "#.#.#.#.#.#",
      "#.#.#...#.#",
      "#.#.#####.#",
      "#.#.......#",
      "#.#########",
      "#..........",
    ];
    return spiral[j]![i] === "#";
  });
  make("two holes in one column, bridged to the same edge", 7, 7, (i, j) => !(i === 4 && (j === 2 || j === 4)));
  make("holes in holes' islands, bridged to the same edges", 13, 13, (i, j) => {
    const d = Math.max(Math.abs(i - 6), Math.abs(j - 6));
    return d % 2 === 0 && !(i === 8 && (j === 4 || j === 6)) && !(i === 6 && j === 6);
  });
  make(
    "two holes side by side, one row apart",
    9,
    6,
    (i, j) => !((j === 2 && i >= 1 && i <= 3) || (j === 3 && i >= 5 && i <= 7)),
  );
  return out;
}

describe("mask outlines on pixel edges", () => {
  const check = (mask: Uint8Array, w: number, h: number, what: string) => {
    const ours = traceMask(mask, w, h).map(points);
    assert.deepEqual(ours, reference(mask, w, h), `${what}: the same rings, order and start points as d3-contour's`);
    assert.deepEqual(rasterise(ours, w, h), mask, `${what}: the rings enclose exactly the mask`);
    return ours;
  };

  it("gives d3-contour's pixel-corner rings (same order and start points) for random masks", () => {
    const random = lcg(7);
    for (let t = 0; t < 600; t++) {
      const [w, h] = [1 + Math.floor(random() * 24), 1 + Math.floor(random() * 24)];
      const fill = 0.1 + random() * 0.8;
      const mask = new Uint8Array(w * h).map(() => (random() < fill ? 1 : 0));
      check(mask, w, h, `random mask ${t} (${w}×${h}, fill ${fill.toFixed(2)})`);
    }
  });

  it("gives d3-contour's rings for blobs with holes and islands in the holes", () => {
    // smoothed noise thresholded: large islands with holes, islands inside the holes, and so on
    const random = lcg(11);
    let holes = 0;
    for (let t = 0; t < 60; t++) {
      const [w, h] = [16 + Math.floor(random() * 24), 16 + Math.floor(random() * 24)];
      const noise = Array.from({ length: w * h }, () => random());
      const mask = new Uint8Array(w * h);
      for (let j = 0; j < h; j++)
        for (let i = 0; i < w; i++) {
          let s = 0;
          for (let dj = -1; dj <= 1; dj++)
            for (let di = -1; di <= 1; di++)
              s += noise[Math.min(h - 1, Math.max(0, j + dj)) * w + Math.min(w - 1, Math.max(0, i + di))]!;
          const band = Math.floor((s / 9) * 10);
          mask[j * w + i] = band % 2;
        }
      holes += check(mask, w, h, `banded blobs ${t} (${w}×${h})`).filter((r) =>
        r.some(([, y]) => !Number.isInteger(y)),
      ).length;
    }
    assert.ok(holes > 20, `islands with holes among the blobs: ${holes}`);
  });

  it("gives d3-contour's rings for adversarial masks", () => {
    for (const { name, mask, w, h } of adversarialMasks()) check(mask, w, h, name);
  });

  it("keeps pixels that touch only at a corner apart, and joins holes by keyholes", () => {
    const diagonal = check(new Uint8Array([1, 0, 0, 1]), 2, 2, "two pixels on a diagonal");
    assert.equal(diagonal.length, 2);
    // a 3×3 square with its centre missing: one contour, area 8, its keyhole bridge at half a pixel
    const mask = new Uint8Array(25);
    for (let j = 1; j < 4; j++) for (let i = 1; i < 4; i++) mask[j * 5 + i] = 1;
    mask[2 * 5 + 2] = 0;
    const [ring, ...more] = check(mask, 5, 5, "ring-shaped region");
    assert.equal(more.length, 0);
    assert.equal(Math.abs(area(ring!)), 8);
    assert.ok(ring!.some(([, y]) => y === 2.5));
    // an island counter-clockwise (y down: its area by the shoelace is negative), starting after its last corner
    const [island] = check(new Uint8Array([0, 0, 0, 0, 1, 1, 0, 1, 1]), 3, 3, "2×2 square");
    assert.deepEqual(island, [
      [3, 1],
      [1, 1],
      [1, 3],
      [3, 3],
    ]);
    assert.equal(area(island!), -4);
  });

  it("traces a box of a label slice as the same mask cut out, in slice coordinates", () => {
    const random = lcg(3);
    const [nx, ny] = [40, 30];
    const slice = new Uint8Array(nx * ny).map(() => Math.floor(random() * 4));
    const member = new Uint8Array(256);
    member[1] = member[3] = 1;
    for (const box of [
      [0, 0, nx - 1, ny - 1],
      [5, 7, 20, 12],
      [39, 0, 39, 29],
      [3, 29, 30, 29],
    ] as const) {
      const [i0, j0, i1, j1] = box;
      const [w, h] = [i1 - i0 + 1, j1 - j0 + 1];
      const mask = new Uint8Array(w * h);
      for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) mask[j * w + i] = member[slice[(j0 + j) * nx + i0 + i]!]!;
      const expected = reference(mask, w, h).map((r) => r.map(([x, y]): Point => [x + i0, y + j0]));
      assert.deepEqual(traceLabels(slice, nx, box, member).map(points), expected, `box ${box.join(",")}`);
    }
  });
});
