import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { it } from "node:test";
import { parsePart10, str } from "../../src/dicom/dataset.js";
import { pushedFixture, replaceAscii } from "../helpers/pushed.js";

it("refuses a pushed instance whose SOP Instance UID is not valid instead of cleaning it (1.2/3 was kept as 1.23)", async () => {
  const { files, pushed, root } = pushedFixture(1);
  const file = files[0]!;
  const ds = parsePart10(file).dataset;
  const sop = str(ds, "SOPInstanceUID");
  const bad = `${sop.slice(0, 4)}/${sop.slice(5)}`; // "2.25/…": dcmjs reads it as "2.25…", another valid UID
  const r = await pushed.accept(replaceAscii(file, sop, bad));
  assert.ok("error" in r, JSON.stringify(r));
  assert.match(r.error, /SOPInstanceUID is missing or not a valid UID/);
  const study = str(ds, "StudyInstanceUID");
  assert.equal(existsSync(path.join(root, study)), false, "nothing kept");

  const series = str(ds, "SeriesInstanceUID");
  const r2 = await pushed.accept(replaceAscii(file, series, `${series.slice(0, 5)}.${series.slice(6)}`));
  assert.ok("error" in r2 && /SeriesInstanceUID/.test(r2.error), "an empty component (..) is refused too");

  const good = await pushed.accept(file);
  assert.deepEqual(good, { study, sop, sopClass: str(ds, "SOPClassUID"), outcome: "stored" });
});
