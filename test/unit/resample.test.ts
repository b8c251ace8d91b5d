import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { padEdge, resampleLinear } from "../../src/inference/resample.js";
import { newUid } from "../../src/outputs/uid.js";

describe("resampling", () => {
  it("is the identity on the same grid", () => {
    const src = Float32Array.from({ length: 4 * 3 * 2 }, (_, i) => i * 1.5);
    assert.deepEqual(resampleLinear(src, [4, 3, 2], [4, 3, 2]), src);
  });
  it("keeps a linear ramp linear when halving and doubling (edge-aligned voxel centres)", () => {
    const src = Float32Array.from({ length: 8 }, (_, i) => i); // along x
    const half = resampleLinear(src, [8, 1, 1], [4, 1, 1]);
    assert.deepEqual(Array.from(half), [0.5, 2.5, 4.5, 6.5]);
    const back = resampleLinear(half, [4, 1, 1], [8, 1, 1]);
    // interior samples land back on the ramp exactly; the outermost ones are clamped to the first/last centre
    assert.deepEqual(Array.from(back), [0.5, 1, 2, 3, 4, 5, 6, 6.5]);
  });
  it("pads by repeating the last voxel of each axis", () => {
    const src = Float32Array.from([1, 2, 3, 4]); // 2×2×1
    assert.deepEqual(
      Array.from(padEdge(src, [2, 2, 1], [3, 3, 2])),
      [1, 2, 2, 3, 4, 4, 3, 4, 4, 1, 2, 2, 3, 4, 4, 3, 4, 4],
    );
  });
});

describe("UIDs", () => {
  it("2.25 UIDs stay below 2^128 and within 64 characters; other roots are cut to 64", () => {
    for (let i = 0; i < 1000; i++) {
      const uid = newUid("2.25");
      assert.match(uid, /^2\.25\.[1-9]\d*$/);
      assert.ok(BigInt(uid.slice(5)) < 2n ** 128n);
    }
    const long = newUid("1.2.826.0.1.3680043.10.1234.5678.9012.3456");
    assert.ok(
      long.length <= 64 && long.startsWith("1.2.826.0.1.3680043.10.1234.5678.9012.3456.") && !long.endsWith("."),
    );
  });
});
