import assert from "node:assert/strict";
import { it } from "node:test";
import { keepLargestComponent } from "../../src/inference/postprocess.js";
import type { LabelMap } from "../../src/volume/volume.js";

it("keeps each label's largest 3D component, leaving other labels alone", () => {
  // 4×3×2: label 1 has a 3-voxel piece spanning both slices and a 1-voxel speck; label 2 has two single voxels
  const slice0 = [1, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1];
  const slice1 = [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0];
  const labels: LabelMap = { dims: [4, 3, 2], data: Uint8Array.from([...slice0, ...slice1]) };
  assert.equal(keepLargestComponent(labels, 1), 1);
  assert.deepEqual(Array.from(labels.data), [1, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]);
  assert.equal(keepLargestComponent(labels, 2), 1, "a tie keeps the first found");
  assert.equal(labels.data.filter((v) => v === 2).length, 1);
});

it("treats diagonal neighbours as separate (6-connectivity)", () => {
  const labels: LabelMap = { dims: [2, 2, 1], data: Uint8Array.from([1, 0, 0, 1]) };
  assert.equal(keepLargestComponent(labels, 1), 1);
});
