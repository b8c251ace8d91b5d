import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { it } from "node:test";
import { checkDeclaredLengths } from "../../src/dicom/declaredLengths.js";
import { parsePart10 } from "../../src/dicom/dataset.js";
import { writePhantomSeries } from "../../src/volume/phantom.js";
import { sharedData } from "../helpers/tools.js";

/** A private OB element after the pixel data that declares 2 GiB and holds 4 bytes. */
const HUGE = new Uint8Array([0xe1, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xf0, 0xff, 0xff, 0x7f, 1, 2, 3, 4]);

it("refuses an element whose declared length runs past the end of the file, which dcmjs would accept", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "delineate-lengths-"));
  const [file] = writePhantomSeries(dir, { size: 16, slices: 1, pixelSpacing: 1, sliceSpacing: 1, patientName: "L^L", patientID: "L" }).files;
  const good = new Uint8Array(readFileSync(file!));
  assert.equal(checkDeclaredLengths(good), undefined);
  const bad = new Uint8Array(good.length + HUGE.length);
  bad.set(good);
  bad.set(HUGE, good.length);
  assert.match(checkDeclaredLengths(bad)!, /element \(7FE1,0010\) declares 2147483632 bytes at byte \d+, but only 4 remain/);
  assert.throws(() => parsePart10(bad), /declares 2147483632 bytes/);
});

it("passes real files with nested and undefined-length sequences and encapsulated pixel data; catches real truncation", { skip: sharedData("pydicom-variants").skip }, () => {
  const read = (rel: string) => new Uint8Array(readFileSync(path.join(sharedData(rel).path)));
  for (const rel of ["highdicom-seg-sr/test_files/sr_document.dcm", "highdicom-seg-sr/test_files/seg_image_ct_binary.dcm", "pydicom-variants/JPEG2000.dcm", "dicompyler-rtss/example_data/rtss.dcm"]) {
    assert.equal(checkDeclaredLengths(read(rel)), undefined, rel);
  }
  assert.match(checkDeclaredLengths(read("pydicom-variants/MR_truncated.dcm"))!, /\(7FE0,0010\) declares 8192 bytes/);
  assert.match(checkDeclaredLengths(read("pydicom-variants/rtplan_truncated.dcm"))!, /declares 976 bytes/);
});
