import assert from "node:assert/strict";
import { it } from "node:test";
import { seededRandom } from "../../harness/syntheticCt.js";
import { labelVoxelCounts } from "../../src/volume/volume.js";

it("counts each label value's voxels, whatever the label map's alignment in its buffer and its length", () => {
  const rnd = seededRandom(7);
  for (let t = 0; t < 100; t++) {
    const buffer = new Uint8Array(64 + Math.floor(rnd() * 64));
    // runs of one value (as in a label map) and single voxels of any value
    for (let i = 0; i < buffer.length; i++) buffer[i] = rnd() < 0.6 ? (i >> 3) % 3 : Math.floor(rnd() * 256);
    const offset = Math.floor(rnd() * 7);
    const data = buffer.subarray(offset, offset + Math.floor(rnd() * (buffer.length - offset)));
    const want = new Array<number>(256).fill(0);
    for (const v of data) want[v]!++;
    assert.deepEqual([...labelVoxelCounts({ dims: [data.length, 1, 1], data })], want, `case ${t}`);
  }
});
