import assert from "node:assert/strict";
import { it } from "node:test";
import { parsePart10 } from "../../src/dicom/dataset.js";
import { DelineateError } from "../../src/errors.js";
import { seriesToVolume, seriesToVolumes } from "../../src/volume/seriesToVolume.js";
import { pushedFixture } from "../helpers/pushed.js";

it("refuses a series declaring a huge matrix or too many frames as a volume error naming it, before allocating", () => {
  const { files } = pushedFixture(3);
  const parsed = files.map((f) => parsePart10(f));
  const series = String(parsed[0]!.dataset.SeriesInstanceUID);
  const declaring = (attrs: Record<string, unknown>) =>
    parsed.map((p) => ({ ...p, dataset: { ...p.dataset, ...attrs } }));
  const refused = (what: RegExp) => (e: unknown) =>
    e instanceof DelineateError &&
    e.code === "DLN_ERR_VOLUME_UNSUPPORTED" &&
    e.message.startsWith(`series ${series}:`) &&
    what.test(e.message);
  // it was DLN_ERR_INTERNAL "Invalid typed array length"
  assert.throws(() => seriesToVolume(declaring({ Rows: 65535, Columns: 65535 })), refused(/65535 × 65535/));
  const parts = seriesToVolumes(declaring({ Rows: 65535, Columns: 65535 }));
  assert.ok(parts.length > 0 && parts.every((p) => refused(/maxMatrixSize/)(p.error)), "convert's path too");
  assert.throws(
    () => seriesToVolume(declaring({ NumberOfFrames: 2 ** 30 })),
    refused(/volume.maxVoxels/),
    "frames are counted before they are expanded",
  );
  assert.throws(
    () =>
      seriesToVolume(parsed, {
        minSlices: 3,
        maxTiltDegrees: 0.05,
        spacingTolerance: 0.01,
        tilt: "correct",
        irregularSpacing: "refuse",
        maxVoxels: 16 * 16 * 2,
      }),
    refused(/768|512|voxels/),
    "the limit is configurable",
  );
  assert.equal(seriesToVolume(parsed).dims.join("x"), "16x16x3", "within the limits a series is a volume");
});
