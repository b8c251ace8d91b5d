import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { num, str } from "../dicom/dataset.js";
import { instanceUnsuitable } from "../route/selectSeries.js";
import { asDelineateError } from "../errors.js";
import { writeNifti } from "../volume/nifti.js";
import { seriesToVolume } from "../volume/seriesToVolume.js";
import { readSeries, scanFolder } from "./scanFolder.js";

export interface ConvertReport {
  written: { seriesInstanceUID: string; file: string; dims: [number, number, number] }[];
  failed: { seriesInstanceUID: string; code: string; message: string }[];
  unreadable: { file: string; reason: string }[];
  /** series with no image to convert (localizers, derived images, non-image objects only) */
  skipped: { seriesInstanceUID: string; reason: string }[];
}

/**
 * `delineate convert`: every series of a folder to NIfTI through the node's own series → volume stage. One series:
 * the file `out` names; several: `out` with `_s<SeriesNumber>` (and the series UID's last digits if two share a
 * number) before the extension. A series that is not a volume is reported with the same refusal the node gives.
 */
export function convertFolder(folder: string, out: string): ConvertReport {
  const report: ConvertReport = { written: [], failed: [], unreadable: [], skipped: [] };
  const { series, unreadable } = scanFolder(folder);
  report.unreadable.push(...unreadable);
  const images = [...series.entries()].filter(([uid, s]) => {
    // left out as in the node (not images, localizers, derived images), whatever their SOP class
    const reasons = s.headers.map((h) => instanceUnsuitable(h));
    if (reasons.every((r) => r)) report.skipped.push({ seriesInstanceUID: uid, reason: [...new Set(reasons)].join(", ") });
    return reasons.some((r) => !r);
  });
  const gz = out.endsWith(".gz");
  const base = out.replace(/\.nii(\.gz)?$/, "");
  const numbers = images.map(([, s]) => num(s.headers[0]!, "SeriesNumber"));
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  for (const [i, [uid, s]] of images.entries()) {
    try {
      const instances = readSeries(uid, s.files).filter((p) => !instanceUnsuitable(p.dataset));
      const volume = seriesToVolume(instances);
      const n = numbers[i];
      const unique = numbers.filter((m) => m === n).length === 1;
      const name = images.length === 1 ? `${base}.nii` : `${base}_s${n ?? "x"}${unique ? "" : `_${uid.slice(-8)}`}.nii`;
      const file = name + (gz ? ".gz" : "");
      writeFileSync(file, writeNifti(volume, gz, str(instances[0]!.dataset, "SeriesDescription")));
      report.written.push({ seriesInstanceUID: uid, file, dims: volume.dims });
    } catch (thrown) {
      const err = asDelineateError(thrown);
      report.failed.push({ seriesInstanceUID: uid, code: err.code, message: err.message });
    }
  }
  return report;
}
