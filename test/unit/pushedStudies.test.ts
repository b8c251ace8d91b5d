import assert from "node:assert/strict";
import { closeSync, existsSync, openSync, readdirSync, writeSync } from "node:fs";
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
  assert.deepEqual(good, { study, series, sop, sopClass: str(ds, "SOPClassUID"), outcome: "stored" });
});

it("routes a pushed study from the index written on receipt, not by parsing every file again", async () => {
  const { files, pushed, root } = pushedFixture(3);
  for (const f of files) assert.ok(!("error" in (await pushed.accept(f))));
  const ds = parsePart10(files[0]!).dataset;
  const study = str(ds, "StudyInstanceUID");
  const series = str(ds, "SeriesInstanceUID");
  const dir = path.join(root, study);
  const kept = readdirSync(dir).filter((f) => f.endsWith(".dcm"));
  assert.equal(kept.length, 3);
  for (const f of kept) {
    assert.ok(existsSync(path.join(dir, `${f}.json`)), "an index entry beside each instance");
    // the files' headers made unreadable: a route pass that parsed them would fail
    const fd = openSync(path.join(dir, f), "r+");
    writeSync(fd, Buffer.alloc(200, 0xff), 0, 200, 128);
    closeSync(fd);
  }
  assert.deepEqual(
    (await pushed.searchSeries(study)).map((s) => [s.SeriesInstanceUID, s.Modality]),
    [[series, "CT"]],
  );
  const metadata = await pushed.seriesMetadata(study, series);
  assert.equal(metadata.length, 3);
  for (const m of metadata) {
    assert.equal((m.ImageOrientationPatient as number[]).length, 6);
    assert.equal(m.PatientName, undefined, "the index holds what routing reads, no patient data");
  }
});
