import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DelineateError } from "../../src/errors.js";
import { seriesToVolume, seriesToVolumes, type VolumePlan, volumeForModel } from "../../src/volume/seriesToVolume.js";
import { splitVolumes } from "../../src/volume/splitVolumes.js";
import { makeSeries, type SliceSpec } from "../helpers/series.js";

/** Slices at z = 0, 2, 4…; `per` copies of the stack, copy c with `extra(c)` and pixels that tell the copies apart. */
function stacks(
  count: number,
  per: number,
  extra: (copy: number) => Record<string, unknown>,
  order: "interleaved" | "stacked" = "stacked",
): SliceSpec[] {
  const out: SliceSpec[] = [];
  for (let c = 0; c < count; c++)
    for (let k = 0; k < per; k++) out.push({ position: [0, 0, 2 * k], pixels: [c, c, c, c, c, c], extra: extra(c) });
  if (order === "interleaved") out.sort((a, b) => a.position[2] - b.position[2]);
  return out.map((s, i) => ({ ...s, instanceNumber: order === "interleaved" ? i + 1 : undefined }));
}

/** The first voxel of a planned volume's first slice: which copy of the pixels it holds. */
const copyOf = (plan: VolumePlan) => {
  const slice = new Float32Array(plan.grid.dims[0] * plan.grid.dims[1]);
  plan.readSlice(0, slice);
  return slice[0];
};

describe("several volumes in one series", () => {
  it("one stack is one volume, with no dimension", () => {
    const parts = splitVolumes(makeSeries(stacks(1, 4, () => ({}))));
    assert.equal(parts.length, 1);
    assert.equal(parts[0]!.dimension, undefined);
  });

  it("splits by EchoNumbers, in echo order, each volume holding only its echo's pixels", () => {
    const series = makeSeries(stacks(3, 4, (c) => ({ EchoNumbers: 3 - c, EchoTime: 10 * (3 - c) })));
    const volumes = seriesToVolumes(series);
    assert.deepEqual(
      volumes.map((v) => v.part.label),
      ["echo 1 of 3 (EchoNumbers 1)", "echo 2 of 3 (EchoNumbers 2)", "echo 3 of 3 (EchoNumbers 3)"],
    );
    // echo 1 was the third copy written (pixels 2)
    assert.deepEqual(
      volumes.map((v) => copyOf(v.plan!)),
      [2, 1, 0],
    );
    assert.ok(volumes.every((v) => v.plan!.grid.dims[2] === 4));
  });

  it("splits by temporal position when echoes are equal", () => {
    const parts = splitVolumes(
      makeSeries(stacks(2, 3, (c) => ({ EchoNumbers: 1, TemporalPositionIdentifier: c + 1 }))),
    );
    assert.deepEqual(
      parts.map((p) => [p.dimension, p.instances.length]),
      [
        ["time point", 3],
        ["time point", 3],
      ],
    );
  });

  it("with nothing to tell them apart, splits by InstanceNumber order at each position (as GE numbers fMRI)", () => {
    const series = makeSeries(stacks(3, 4, () => ({}), "interleaved"));
    const volumes = seriesToVolumes(series);
    assert.deepEqual(
      volumes.map((v) => v.part.dimension),
      ["repetition", "repetition", "repetition"],
    );
    assert.deepEqual(
      volumes.map((v) => copyOf(v.plan!)),
      [0, 1, 2],
    );
  });

  it("does not split copies that would each be a single image: the series is refused as sharing positions", () => {
    const series = makeSeries(
      [0, 1, 2].map((c) => ({ position: [0, 0, 0] as [number, number, number], extra: { AcquisitionNumber: c + 1 } })),
    );
    assert.equal(splitVolumes(series).length, 1);
    assert.throws(
      () => seriesToVolume(series),
      (e: unknown) => e instanceof DelineateError && /share a position/.test(e.message),
    );
  });

  it("for a model: takes the acquisition with the most slices and says which, in a warning", () => {
    const series = makeSeries([
      ...stacks(1, 3, () => ({ AcquisitionNumber: 1 })),
      ...stacks(1, 5, () => ({ AcquisitionNumber: 2 })).map((s) => ({ ...s, pixels: [7, 7, 7, 7, 7, 7] })),
    ]);
    const { volume, warnings } = volumeForModel(series);
    assert.equal(volume.dims[2], 5);
    assert.equal(volume.data[0], 7);
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0]!,
      /holds 2 acquisitions at the same positions: used acquisition 2 of 2 \(AcquisitionNumber 2\) \(5 slices\); left out acquisition 1 of 2 \(AcquisitionNumber 1\), 3 slices/,
    );
  });

  it("for a model: refuses several echoes, naming what splits them", () => {
    const series = makeSeries(stacks(2, 4, (c) => ({ EchoNumbers: c + 1 })));
    assert.throws(
      () => volumeForModel(series),
      (e: unknown) =>
        e instanceof DelineateError &&
        e.code === "DLN_ERR_VOLUME_UNSUPPORTED" &&
        /holds 2 volumes told apart by echo/.test(e.message),
    );
  });

  it("splits mixed orientations first", () => {
    const axial = stacks(1, 3, () => ({}));
    const coronal = [0, 1, 2].map((k) => ({
      position: [0, 2 * k, 0] as [number, number, number],
      iop: [1, 0, 0, 0, 0, -1],
    }));
    const parts = splitVolumes(makeSeries([...axial, ...coronal]));
    assert.deepEqual(
      parts.map((p) => [p.dimension, p.instances.length]),
      [
        ["orientation", 3],
        ["orientation", 3],
      ],
    );
  });

  it("numbers the volumes of every orientation apart, so two echoes of one orientation do not share a file name", () => {
    const axial = stacks(2, 3, (c) => ({ EchoNumbers: c + 1 }));
    const coronal = [0, 1, 2].map((k) => ({
      position: [0, 2 * k, 0] as [number, number, number],
      iop: [1, 0, 0, 0, 0, -1],
    }));
    const parts = splitVolumes(makeSeries([...axial, ...coronal]));
    assert.deepEqual(
      parts.map((p) => p.index),
      [1, 2, 3],
    );
    assert.match(parts[1]!.label, /^orientation 1 of 2, echo 2 of 2/);
  });
});
