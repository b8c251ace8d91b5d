import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DelineateError } from "../../src/errors.js";
import {
  median,
  orientationFromIOP,
  sortAlongNormal,
  stackSpacing,
  stepAngle,
  type Vec3,
} from "../../src/volume/geometry.js";
import {
  DEFAULT_VOLUME_OPTIONS,
  labelsOnStack,
  planVolume,
  seriesToVolume,
  volumeForModel,
} from "../../src/volume/seriesToVolume.js";
import { makeSeries } from "../helpers/series.js";

const close = (a: readonly number[], b: readonly number[], tol = 1e-9) => a.every((v, i) => Math.abs(v - b[i]!) <= tol);
function refusal(fn: () => unknown, code: string, pattern: RegExp) {
  assert.throws(fn, (err: unknown) => err instanceof DelineateError && err.code === code && pattern.test(err.message));
}

describe("direction cosines", () => {
  it("gives row, column and their cross product as the normal", () => {
    const o = orientationFromIOP([0, 1, 0, 0, 0, -1]); // sagittal
    assert.ok(typeof o !== "string");
    assert.deepEqual(o.normal, [-1, 0, 0]);
  });
  it("refuses vectors that are not unit length or not orthogonal", () => {
    assert.match(orientationFromIOP([1, 0, 0, 0, 0.9, 0]) as string, /unit length/);
    assert.match(orientationFromIOP([1, 0, 0, 0.1, 0.995, 0]) as string, /orthogonal/);
    assert.match(orientationFromIOP([1, 0, 0]) as string, /3 values/);
  });
  it("accepts float noise within 1e-4, as scanners write it", () => {
    assert.ok(typeof orientationFromIOP([1, 0, -1.224647e-16, 0, 1, 0]) !== "string");
  });
});

describe("slice sorting", () => {
  it("orders an oblique stack by distance along the normal, whatever the input order", () => {
    const [a, b] = [0.3, 0.4]; // an exactly orthonormal oblique pair: rotations about z, then about the row
    const o = orientationFromIOP([
      Math.cos(a),
      Math.sin(a),
      0,
      -Math.sin(a) * Math.cos(b),
      Math.cos(a) * Math.cos(b),
      Math.sin(b),
    ]);
    assert.ok(typeof o !== "string");
    const origin: Vec3 = [10, -20, 30];
    const at = (k: number): Vec3 => [
      origin[0] + k * 2 * o.normal[0],
      origin[1] + k * 2 * o.normal[1],
      origin[2] + k * 2 * o.normal[2],
    ];
    const input = [3, 0, 4, 1, 2].map(at);
    const { order, distances } = sortAlongNormal(input, o.normal);
    assert.deepEqual(order, [1, 3, 4, 0, 2]);
    distances.slice(1).forEach((d, i) => assert.ok(Math.abs(d - distances[i]! - 2) < 1e-9));
  });
  it("measures the tilt of a sheared stack", () => {
    const tilt = (18.5 * Math.PI) / 180;
    const angle = stepAngle([0, 0, 0], [0, Math.sin(tilt) * 5, Math.cos(tilt) * 5], [0, 0, 1]);
    assert.ok(Math.abs(angle - tilt) < 1e-12);
  });
});

describe("slice spacing", () => {
  it("is the stack's extent over n − 1, not a typical step", () => {
    // steps rounded to 4 decimals: 1.0000 three times, 1.0001 once; the median is 1.0000, the extent 4.0001
    const d = [0, 1, 2.0001, 3.0001, 4.0001];
    assert.ok(Math.abs(stackSpacing(d) - 1.000025) < 1e-12);
    assert.equal(median(d.slice(1).map((v, i) => v - d[i]!)), 1);
    assert.equal(stackSpacing([3, 5.5]), 2.5);
    assert.equal(stackSpacing([7]), 0);
  });
  it("puts a regular stack's far slice on its last image, whatever the rounding of its steps", () => {
    // 256 sagittal slices 1.0000149 mm apart, written to 4 decimals: their median step (1.0000) would leave the far
    // slice 3.8 µm short
    const iop = [0, 1, 0, 0, 0, -1];
    const x = (k: number) => Number((40.1234 - k * 1.0000149).toFixed(4));
    const plan = planVolume(
      makeSeries(Array.from({ length: 256 }, (_, k) => ({ position: [x(k), -20.5, 35.25] as Vec3, iop }))),
    );
    const { origin, spacing, direction } = plan.grid;
    const far = origin.map((o, a) => o + direction[2][a]! * spacing[2] * 255);
    assert.ok(Math.abs(far[0]! - x(255)) < 1e-9, `the far slice at x = ${far[0]}, the last image at ${x(255)}`);
    assert.equal(plan.resampled, undefined, "steps 1.0000 and 1.0001 mm are regular");
  });
  it("keeps the median step for an irregular stack, whose extent spans a gap", () => {
    const plan = planVolume(
      makeSeries([0, 1, 2, 4].map((k) => ({ position: [0, 0, k * 2.5] as [number, number, number] }))),
    );
    assert.equal(plan.resampled?.stack.grid.spacing[2], 2.5);
    assert.equal(plan.grid.spacing[2], 2.5);
  });
});

describe("series to volume", () => {
  it("sorts by position, not InstanceNumber, and takes spacing, origin and direction from the headers", () => {
    const series = makeSeries([
      { position: [0, 0, 5], instanceNumber: 1 },
      { position: [0, 0, -5], instanceNumber: 2 },
      { position: [0, 0, 0], instanceNumber: 3 },
    ]);
    const v = seriesToVolume(series);
    assert.deepEqual(v.dims, [3, 2, 3]);
    assert.deepEqual(v.spacing, [0.75, 0.5, 5]); // PixelSpacing is [between rows, between columns]
    assert.deepEqual(v.origin, [0, 0, -5]);
    assert.deepEqual(
      v.slices.map((s) => s.sopInstanceUID),
      ["1.2.3.2", "1.2.3.3", "1.2.3.1"],
    );
    assert.deepEqual(Array.from(v.data.subarray(0, 6)), [10, 11, 12, 13, 14, 15]); // slice made second comes first
  });
  it("builds a sagittal stack with its normal along -x and increasing k along it", () => {
    const iop = [0, 1, 0, 0, 0, -1];
    const v = seriesToVolume(
      makeSeries([
        { position: [-2, 0, 0], iop },
        { position: [2, 0, 0], iop },
        { position: [0, 0, 0], iop },
      ]),
    );
    assert.deepEqual(v.direction, [
      [0, 1, 0],
      [0, 0, -1],
      [-1, 0, 0],
    ]);
    assert.deepEqual(
      v.slices.map((s) => s.position[0]),
      [2, 0, -2],
    );
    assert.ok(close(v.spacing, [0.75, 0.5, 2]));
  });
  it("applies rescale to signed pixels and ignores bits above BitsStored", () => {
    const signed = seriesToVolume(
      makeSeries(
        [0, 1, 2].map((k) => ({
          position: [0, 0, k] as [number, number, number],
          pixels: [-1000, 0, 1000, -1, 1, 32767],
        })),
        { signed: true, slope: 2, intercept: -5 },
      ),
    );
    assert.deepEqual(Array.from(signed.data.subarray(0, 6)), [-2005, -5, 1995, -7, -3, 65529]);
    // 12 bits stored, unsigned, with garbage in the top 4 bits (an overlay, say)
    const masked = seriesToVolume(
      makeSeries(
        [0, 1, 2].map((k) => ({
          position: [0, 0, k] as [number, number, number],
          pixels: [0xf000 | 100, 4095, 0x1000, 0, 1, 2],
        })),
        { bitsStored: 12, intercept: -1024 },
      ),
    );
    assert.deepEqual(Array.from(masked.data.subarray(0, 6)), [-924, 3071, -1024, -1024, -1023, -1022]);
    // 12 bits stored, signed: 0x0fff is -1
    const signed12 = seriesToVolume(
      makeSeries(
        [0, 1, 2].map((k) => ({
          position: [0, 0, k] as [number, number, number],
          pixels: [0x0fff, 0x0800, 0x07ff, 0, 1, 2],
        })),
        { bitsStored: 12, signed: true },
      ),
    );
    assert.deepEqual(Array.from(signed12.data.subarray(0, 3)), [-1, -2048, 2047]);
  });
  const refusing = { ...DEFAULT_VOLUME_OPTIONS, tilt: "refuse", irregularSpacing: "refuse" } as const;
  it('with volume.tilt "refuse", refuses gantry tilt, named by the header or seen in the positions', () => {
    const sheared = makeSeries([0, 1, 2].map((k) => ({ position: [0, k * 1.6, k * 5] as [number, number, number] })));
    refusal(
      () => seriesToVolume(sheared, refusing),
      "DLN_ERR_VOLUME_TILT",
      /series 1\.2\.3\.100: gantry tilt of 17\.7\d°: .*volume\.tilt is "refuse"/,
    );
    const declared = makeSeries(
      [0, 1, 2].map((k) => ({
        position: [0, 0, k * 5] as [number, number, number],
        extra: { GantryDetectorTilt: -18.5 },
      })),
    );
    refusal(() => seriesToVolume(declared, refusing), "DLN_ERR_VOLUME_TILT", /gantry tilt of -18\.50°/);
    // by default a header tilt over slices stacked along the normal leaves nothing to correct
    const plain = planVolume(declared);
    assert.equal(plain.resampled, undefined);
    assert.deepEqual(plain.warnings, []);
  });
  it('with volume.irregularSpacing "refuse", refuses a missing slice and irregular spacing', () => {
    refusal(
      () =>
        seriesToVolume(
          makeSeries([0, 1, 2, 4].map((k) => ({ position: [0, 0, k * 2.5] as [number, number, number] }))),
          refusing,
        ),
      "DLN_ERR_VOLUME_SPACING",
      /median 2\.500 mm, steps from 2\.500 to 5\.000 mm/,
    );
  });
  it("corrects a sheared stack: rows shifted by the shear (whole and half pixels), the plane step the true distance", () => {
    // column spacing 0.5 mm (PixelSpacing[0]); slice k moves 0.5·k mm along the column (y) and 2 mm along z, so its
    // pixel row r lies at grid row r + k; the 2×3 image of slice k holds 100·k + index
    const sheared = makeSeries(
      [0, 1, 2].map((k) => ({
        position: [0, 0.5 * k, 2 * k] as [number, number, number],
        pixels: [0, 1, 2, 3, 4, 5].map((i) => 100 * k + i),
      })),
    );
    const plan = planVolume(sheared);
    assert.deepEqual(plan.grid.dims, [3, 4, 3], "two rows added to hold the slice shifted furthest");
    assert.deepEqual(plan.grid.spacing, [0.75, 0.5, 2]);
    assert.deepEqual(plan.grid.origin, [0, 0, 0]);
    assert.equal(plan.resampled?.tilt, true);
    assert.equal(plan.resampled?.equalised, false);
    assert.match(
      plan.warnings.join(),
      /gantry tilt of 14\.04° corrected: resampled onto a rectilinear grid of 3×4×3, planes 2\.000 mm apart/,
    );
    const slice = (k: number) => {
      const out = new Float32Array(12);
      plan.readSlice(k, out);
      return Array.from(out);
    };
    // outside a slice: the lowest value of that slice
    assert.deepEqual(slice(0), [0, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(slice(1), [100, 100, 100, 100, 101, 102, 103, 104, 105, 100, 100, 100]);
    assert.deepEqual(slice(2), [200, 200, 200, 200, 200, 200, 200, 201, 202, 203, 204, 205]);
    // half a pixel: slice 1 shifted by 0.25 mm, so grid row j samples its rows at j - 0.5 (linear interpolation)
    const half = planVolume(
      makeSeries(
        [0, 1, 2].map((k) => ({
          position: [0, 0.25 * k, 2 * k] as [number, number, number],
          pixels: [0, 1, 2, 4, 5, 6].map((i) => 100 * k + i),
        })),
      ),
    );
    assert.deepEqual(half.grid.dims, [3, 3, 3]);
    const out = new Float32Array(9);
    half.readSlice(1, out);
    assert.deepEqual(Array.from(out), [100, 100, 100, 102, 103, 104, 100, 100, 100]);
  });
  it("carries labels on the corrected grid back onto the source slices, each pixel from where it lies", () => {
    const sheared = makeSeries([0, 1, 2].map((k) => ({ position: [0, 0.5 * k, 2 * k] as [number, number, number] })));
    const plan = planVolume(sheared);
    // label each grid voxel with its row j + 10·plane: source pixel (x, y) of slice k must get y + k + 10·k
    const [mx, my, mz] = plan.grid.dims;
    const grid = new Uint8Array(mx * my * mz).map((_, n) => (Math.floor(n / mx) % my) + 10 * Math.floor(n / (mx * my)));
    const back = labelsOnStack({ dims: plan.grid.dims, data: grid }, [3, 2, 3], plan.resampled!.placement);
    assert.deepEqual(Array.from(back.data), [0, 0, 0, 1, 1, 1, 11, 11, 11, 12, 12, 12, 22, 22, 22, 23, 23, 23]);
  });
  it("resamples a missing slice to equal steps: the neighbours kept, the gap interpolated", () => {
    const gap = makeSeries(
      [0, 1, 3].map((k) => ({ position: [0, 0, 2.5 * k] as [number, number, number], pixels: Array(6).fill(30 * k) })),
    );
    const plan = planVolume(gap);
    assert.deepEqual(plan.grid.dims, [3, 2, 4]);
    assert.equal(plan.grid.spacing[2], 2.5);
    assert.equal(plan.resampled?.equalised, true);
    assert.match(
      plan.warnings.join(),
      /slice spacing is not regular \(median 3\.750 mm, steps from 2\.500 to 5\.000 mm\): resampled onto a rectilinear grid of 3×2×4, planes 2\.500 mm apart/,
    );
    const values = [0, 1, 2, 3].map((m) => {
      const out = new Float32Array(6);
      plan.readSlice(m, out);
      return out[0];
    });
    assert.deepEqual(values, [0, 30, 60, 90]);
    // the node never puts planes between source images: its outputs could not lie on them
    refusal(() => volumeForModel(gap), "DLN_ERR_VOLUME_SPACING", /missing slices or irregular spacing/);
  });
  it("refuses duplicate positions, mixed orientations, too few slices and multi-frame", () => {
    refusal(
      () => seriesToVolume(makeSeries([{ position: [0, 0, 0] }, { position: [0, 0, 0] }, { position: [0, 0, 1] }])),
      "DLN_ERR_VOLUME_UNSUPPORTED",
      /share a position/,
    );
    refusal(
      () =>
        seriesToVolume(
          makeSeries([
            { position: [0, 0, 0] },
            { position: [0, 0, 1], iop: [0, 1, 0, 0, 0, -1] },
            { position: [0, 0, 2] },
          ]),
        ),
      "DLN_ERR_VOLUME_UNSUPPORTED",
      /instance 1\.2\.3\.2 has a different orientation/,
    );
    refusal(
      () => seriesToVolume(makeSeries([{ position: [0, 0, 0] }])),
      "DLN_ERR_VOLUME_TOO_FEW_SLICES",
      /1 slice\(s\)/,
    );
    refusal(
      () =>
        seriesToVolume(
          makeSeries(
            [0, 1, 2].map((k) => ({ position: [0, 0, k] as [number, number, number], extra: { NumberOfFrames: 4 } })),
          ),
        ),
      "DLN_ERR_VOLUME_UNSUPPORTED",
      /multi-frame/,
    );
  });
  it("refuses truncated pixel data and compressed transfer syntaxes, naming the instance", () => {
    const s = makeSeries([0, 1, 2].map((k) => ({ position: [0, 0, k] as [number, number, number] })));
    s[1]!.dataset.PixelData = [new ArrayBuffer(4)];
    refusal(
      () => seriesToVolume(s),
      "DLN_ERR_VOLUME_UNSUPPORTED",
      /instance 1\.2\.3\.2: pixel data holds 2 of 6 pixels \(truncated\)/,
    );
    const j2k = makeSeries([0, 1, 2].map((k) => ({ position: [0, 0, k] as [number, number, number] })));
    j2k[0]!.transferSyntaxUID = "1.2.840.10008.1.2.4.90";
    refusal(() => seriesToVolume(j2k), "DLN_ERR_VOLUME_UNSUPPORTED", /transfer syntax 1\.2\.840\.10008\.1\.2\.4\.90/);
  });
});
