import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DelineateError } from "../../src/errors.js";
import { orientationFromIOP, sortAlongNormal, stepAngle, type Vec3 } from "../../src/volume/geometry.js";
import { seriesToVolume } from "../../src/volume/seriesToVolume.js";
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
    const o = orientationFromIOP([Math.cos(a), Math.sin(a), 0, -Math.sin(a) * Math.cos(b), Math.cos(a) * Math.cos(b), Math.sin(b)]);
    assert.ok(typeof o !== "string");
    const origin: Vec3 = [10, -20, 30];
    const at = (k: number): Vec3 => [origin[0] + k * 2 * o.normal[0], origin[1] + k * 2 * o.normal[1], origin[2] + k * 2 * o.normal[2]];
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
    assert.deepEqual(v.slices.map((s) => s.sopInstanceUID), ["1.2.3.2", "1.2.3.3", "1.2.3.1"]);
    assert.deepEqual(Array.from(v.data.subarray(0, 6)), [10, 11, 12, 13, 14, 15]); // slice made second comes first
  });
  it("builds a sagittal stack with its normal along -x and increasing k along it", () => {
    const iop = [0, 1, 0, 0, 0, -1];
    const v = seriesToVolume(makeSeries([{ position: [-2, 0, 0], iop }, { position: [2, 0, 0], iop }, { position: [0, 0, 0], iop }]));
    assert.deepEqual(v.direction, [[0, 1, 0], [0, 0, -1], [-1, 0, 0]]);
    assert.deepEqual(v.slices.map((s) => s.position[0]), [2, 0, -2]);
    assert.ok(close(v.spacing, [0.75, 0.5, 2]));
  });
  it("applies rescale to signed pixels and ignores bits above BitsStored", () => {
    const signed = seriesToVolume(makeSeries([0, 1, 2].map((k) => ({ position: [0, 0, k] as [number, number, number], pixels: [-1000, 0, 1000, -1, 1, 32767] })), { signed: true, slope: 2, intercept: -5 }));
    assert.deepEqual(Array.from(signed.data.subarray(0, 6)), [-2005, -5, 1995, -7, -3, 65529]);
    // 12 bits stored, unsigned, with garbage in the top 4 bits (an overlay, say)
    const masked = seriesToVolume(makeSeries([0, 1, 2].map((k) => ({ position: [0, 0, k] as [number, number, number], pixels: [0xf000 | 100, 4095, 0x1000, 0, 1, 2] })), { bitsStored: 12, intercept: -1024 }));
    assert.deepEqual(Array.from(masked.data.subarray(0, 6)), [-924, 3071, -1024, -1024, -1023, -1022]);
    // 12 bits stored, signed: 0x0fff is -1
    const signed12 = seriesToVolume(makeSeries([0, 1, 2].map((k) => ({ position: [0, 0, k] as [number, number, number], pixels: [0x0fff, 0x0800, 0x07ff, 0, 1, 2] })), { bitsStored: 12, signed: true }));
    assert.deepEqual(Array.from(signed12.data.subarray(0, 3)), [-1, -2048, 2047]);
  });
  it("refuses gantry tilt, named by the header or seen in the positions", () => {
    const sheared = makeSeries([0, 1, 2].map((k) => ({ position: [0, k * 1.6, k * 5] as [number, number, number] })));
    refusal(() => seriesToVolume(sheared), "DLN_ERR_VOLUME_TILT", /series 1\.2\.3\.100: gantry tilt of 17\.7\d°/);
    const declared = makeSeries([0, 1, 2].map((k) => ({ position: [0, 0, k * 5] as [number, number, number], extra: { GantryDetectorTilt: -18.5 } })));
    refusal(() => seriesToVolume(declared), "DLN_ERR_VOLUME_TILT", /gantry tilt of -18\.50°/);
  });
  it("refuses a missing slice and irregular spacing", () => {
    refusal(() => seriesToVolume(makeSeries([0, 1, 2, 4].map((k) => ({ position: [0, 0, k * 2.5] as [number, number, number] })))), "DLN_ERR_VOLUME_SPACING", /median 2\.500 mm, steps from 2\.500 to 5\.000 mm/);
  });
  it("refuses duplicate positions, mixed orientations, too few slices and multi-frame", () => {
    refusal(() => seriesToVolume(makeSeries([{ position: [0, 0, 0] }, { position: [0, 0, 0] }, { position: [0, 0, 1] }])), "DLN_ERR_VOLUME_UNSUPPORTED", /share a position/);
    refusal(
      () => seriesToVolume(makeSeries([{ position: [0, 0, 0] }, { position: [0, 0, 1], iop: [0, 1, 0, 0, 0, -1] }, { position: [0, 0, 2] }])),
      "DLN_ERR_VOLUME_UNSUPPORTED",
      /instance 1\.2\.3\.2 has a different orientation/,
    );
    refusal(() => seriesToVolume(makeSeries([{ position: [0, 0, 0] }])), "DLN_ERR_VOLUME_TOO_FEW_SLICES", /1 slice\(s\)/);
    refusal(() => seriesToVolume(makeSeries([0, 1, 2].map((k) => ({ position: [0, 0, k] as [number, number, number], extra: { NumberOfFrames: 4 } })))), "DLN_ERR_VOLUME_UNSUPPORTED", /multi-frame/);
  });
  it("refuses truncated pixel data and compressed transfer syntaxes, naming the instance", () => {
    const s = makeSeries([0, 1, 2].map((k) => ({ position: [0, 0, k] as [number, number, number] })));
    s[1]!.dataset.PixelData = [new ArrayBuffer(4)];
    refusal(() => seriesToVolume(s), "DLN_ERR_VOLUME_UNSUPPORTED", /instance 1\.2\.3\.2: pixel data holds 2 of 6 pixels \(truncated\)/);
    const j2k = makeSeries([0, 1, 2].map((k) => ({ position: [0, 0, k] as [number, number, number] })));
    j2k[0]!.transferSyntaxUID = "1.2.840.10008.1.2.4.90";
    refusal(() => seriesToVolume(j2k), "DLN_ERR_VOLUME_UNSUPPORTED", /transfer syntax 1\.2\.840\.10008\.1\.2\.4\.90/);
  });
});
