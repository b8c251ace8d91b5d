import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Ring, traceMask } from "../../src/outputs/contours.js";

/** Even-odd point-in-polygon over all rings, for pixel centres (i + 0.5, j + 0.5): never on an edge. */
function rasterise(rings: Ring[], width: number, height: number): Uint8Array {
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

describe("mask outlines on pixel edges", () => {
  it("encloses exactly the mask's pixels, holes and diagonal contacts included, for random masks", () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let t = 0; t < 200; t++) {
      const [w, h] = [3 + Math.floor(random() * 20), 3 + Math.floor(random() * 20)];
      const fill = 0.2 + random() * 0.6;
      const mask = new Uint8Array(w * h).map(() => (random() < fill ? 1 : 0));
      const rings = traceMask(mask, w, h);
      assert.deepEqual(rasterise(rings, w, h), mask, `mask ${t} (${w}×${h})`);
      for (const r of rings)
        for (const [x, y] of r)
          assert.ok(
            Number.isInteger(x) && (Number.isInteger(y) || Number.isInteger(y * 2)),
            `corner or keyhole point ${x},${y}`,
          );
    }
  });
  it("joins a hole to its island with a keyhole: one contour for a ring-shaped region", () => {
    const mask = new Uint8Array(25);
    for (let j = 1; j < 4; j++) for (let i = 1; i < 4; i++) mask[j * 5 + i] = 1;
    mask[2 * 5 + 2] = 0;
    const rings = traceMask(mask, 5, 5);
    assert.equal(rings.length, 1);
    const area =
      rings[0]!.reduce((a, [x1, y1], k, r) => a + x1 * r[(k + 1) % r.length]![1] - r[(k + 1) % r.length]![0] * y1, 0) /
      2;
    assert.equal(Math.abs(area), 8);
  });
});
