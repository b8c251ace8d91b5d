import assert from "node:assert/strict";
import { readFileSync, truncateSync } from "node:fs";
import path from "node:path";
import { it } from "node:test";
import { parsePart10, pixelDataOf, readPart10Lazily } from "../../src/dicom/dataset.js";
import { checkDeclaredLengths, inspectPart10 } from "../../src/dicom/declaredLengths.js";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { sharedData, tempDir } from "../helpers/tools.js";

/** A private OB element after the pixel data that declares 2 GiB and holds 4 bytes. */
const HUGE = new Uint8Array([0xe1, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xf0, 0xff, 0xff, 0x7f, 1, 2, 3, 4]);

/** One phantom CT slice of `size`² as a Part 10 file in a temporary folder. */
const oneSlice = (size: number): string =>
  writePhantomSeries(tempDir("lengths-"), {
    size,
    slices: 1,
    pixelSpacing: 1,
    sliceSpacing: 1,
    patientName: "L^L",
    patientID: "L",
  }).files[0]!;

it("refuses an element whose declared length runs past the end of the file, which dcmjs would accept", () => {
  const file = oneSlice(16);
  const good = new Uint8Array(readFileSync(file));
  assert.equal(checkDeclaredLengths(good), undefined);
  const bad = new Uint8Array(good.length + HUGE.length);
  bad.set(good);
  bad.set(HUGE, good.length);
  assert.match(
    checkDeclaredLengths(bad)!,
    /element \(7FE1,0010\) declares 2147483632 bytes at byte \d+, but only 4 remain/,
  );
  assert.throws(() => parsePart10(bad), /declares 2147483632 bytes/);
});

it("passes real files with nested and undefined-length sequences and encapsulated pixel data; catches real truncation", {
  skip: sharedData("pydicom-variants").skip,
}, () => {
  const read = (rel: string) => new Uint8Array(readFileSync(path.join(sharedData(rel).path)));
  for (const rel of [
    "highdicom-seg-sr/test_files/sr_document.dcm",
    "highdicom-seg-sr/test_files/seg_image_ct_binary.dcm",
    "pydicom-variants/JPEG2000.dcm",
    "dicompyler-rtss/example_data/rtss.dcm",
  ]) {
    assert.equal(checkDeclaredLengths(read(rel)), undefined, rel);
  }
  assert.match(checkDeclaredLengths(read("pydicom-variants/MR_truncated.dcm"))!, /\(7FE0,0010\) declares 8192 bytes/);
  assert.match(checkDeclaredLengths(read("pydicom-variants/rtplan_truncated.dcm"))!, /declares 976 bytes/);
});

it("reads a header from the file's first bytes and its pixels from their place, equal to a whole-file parse", () => {
  // 300×300 16-bit: 180 kB of pixels, more than the 64 KiB the header is first looked for in
  const file = oneSlice(300);
  const bytes = new Uint8Array(readFileSync(file));
  const whole = parsePart10(bytes);
  const layout = inspectPart10(bytes.subarray(0, 4096), bytes.length);
  assert.equal(layout.problem, undefined);
  assert.equal(layout.pixelData?.length, 300 * 300 * 2);
  assert.equal(layout.pixelData!.valueOffset + layout.pixelData!.length!, bytes.length);
  // a prefix that ends inside the header: read more
  assert.equal(inspectPart10(bytes.subarray(0, 200), bytes.length).incomplete, true);

  const lazy = readPart10Lazily(file);
  assert.equal(lazy.dataset.PixelData, undefined, "the header alone");
  assert.equal(lazy.dataset.SOPInstanceUID, whole.dataset.SOPInstanceUID);
  assert.equal(lazy.transferSyntaxUID, whole.transferSyntaxUID);
  const pixels = pixelDataOf(lazy) as ArrayBuffer[];
  assert.deepEqual(new Uint8Array(pixels[0]!), new Uint8Array((whole.dataset.PixelData as ArrayBuffer[])[0]!));

  // a file cut after it was scanned: reading its pixels names the file and what is missing
  truncateSync(file, bytes.length - 1000);
  assert.throws(
    () => pixelDataOf(lazy),
    (e: Error) => e.message.includes(file) && /ends at byte/.test(e.message),
  );
  // and cut before: the scan itself refuses it, as parsePart10 does
  assert.throws(() => readPart10Lazily(file), /\(7FE0,0010\) declares 180000 bytes/);
});
