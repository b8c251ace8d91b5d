import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { PushedStudies } from "../../src/ingest/pushedStudies.js";
import { tempDir } from "./tools.js";

/** A small phantom series' files, and a fresh pushed store. */
export function pushedFixture(slices = 3): { files: Uint8Array[]; pushed: PushedStudies; root: string } {
  const work = tempDir("pushed-");
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
