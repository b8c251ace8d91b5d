import assert from "node:assert/strict";
import { it } from "node:test";
import { parsePart10, parsePart10Received, pixelDataOf, writePart10 } from "../../src/dicom/dataset.js";
import { makeSeries } from "../helpers/series.js";

it("parsePart10Received gives parsePart10's dataset, its native pixels read from the received bytes when asked", () => {
  const [rows, cols] = [6, 5];
  const [slice] = makeSeries([{ position: [0, 0, 0], pixels: Array.from({ length: rows * cols }, (_, i) => i * 13) }], {
    rows,
    cols,
  });
  const bytes = writePart10(slice!.dataset);
  const whole = parsePart10(bytes);
  const received = parsePart10Received(bytes);
  const { PixelData: pixels, ...header } = whole.dataset;
  assert.deepEqual(received.dataset, header);
  assert.equal(received.transferSyntaxUID, whole.transferSyntaxUID);
  assert.deepEqual(
    new Uint8Array((pixelDataOf(received) as ArrayBuffer[])[0]!),
    new Uint8Array((pixels as ArrayBuffer[])[0]!),
  );
});
