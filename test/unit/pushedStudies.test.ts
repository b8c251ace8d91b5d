import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { it } from "node:test";
import { parsePart10, str } from "../../src/dicom/dataset.js";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { PushedStudies } from "../../src/ingest/pushedStudies.js";

/** A small phantom series' files, and a fresh pushed store. */
export function pushedFixture(slices = 3): { files: Uint8Array[]; pushed: PushedStudies; root: string } {
  const work = mkdtempSync(path.join(tmpdir(), "delineate-pushed-"));
  const s = writePhantomSeries(path.join(work, "in"), {
    size: 16,
    slices,
    pixelSpacing: 2,
    sliceSpacing: 2,
    patientName: "Push^Pia",
    patientID: "PUSH-1",
  });
  const root = path.join(work, "pushed");
  return { files: s.files.map((f) => new Uint8Array(readFileSync(f))), pushed: new PushedStudies(root), root };
}

/** `bytes` with every occurrence of the ASCII string `from` replaced by `to` (same length). */
export function replaceAscii(bytes: Uint8Array, from: string, to: string): Uint8Array {
  assert.equal(from.length, to.length);
  const out = Buffer.from(bytes);
  const needle = Buffer.from(from);
  for (let i = out.indexOf(needle); i !== -1; i = out.indexOf(needle, i + 1)) out.write(to, i, "latin1");
  return new Uint8Array(out);
}

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
  assert.deepEqual(good, { study, sop, sopClass: str(ds, "SOPClassUID") });
});
