import { readFileSync, writeFileSync } from "node:fs";
import type { PreparedStudy } from "../../harness/data.js";
import { parsePart10, writePart10 } from "../../src/dicom/dataset.js";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";

export { type PreparedStudy, prepareAbdomenStudy } from "../../harness/data.js";

/** A phantom CT study whose middle slice has lost half its pixel data: a malformed series a PACS still stores. */
export function truncatedPhantomStudy(dest: string, patientName: string, patientID: string): PreparedStudy {
  const r = writePhantomSeries(dest, {
    size: 64,
    slices: 12,
    pixelSpacing: 6,
    sliceSpacing: 4,
    patientName,
    patientID,
  });
  const victim = r.files[6]!;
  const parsed = parsePart10(new Uint8Array(readFileSync(victim)));
  const pixels = (parsed.dataset.PixelData as ArrayBuffer[])[0]!;
  parsed.dataset.PixelData = [pixels.slice(0, pixels.byteLength / 2)];
  parsed.dataset._vrMap = { ...(parsed.dataset._vrMap ?? {}), PixelData: "OW" };
  writeFileSync(victim, writePart10(parsed.dataset));
  return {
    dir: dest,
    studyInstanceUID: r.studyInstanceUID,
    seriesInstanceUID: r.seriesInstanceUID,
    patientName,
    patientID,
  };
}
