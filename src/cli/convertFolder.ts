import { mkdirSync } from "node:fs";
import path from "node:path";
import { num, type ParsedDicom, str } from "../dicom/dataset.js";
import { isEncapsulated, loadPixelDecoders } from "../dicom/pixelDecoders.js";
import { asDelineateError } from "../errors.js";
import { instanceUnsuitable } from "../route/selectSeries.js";
import { writeNiftiFile } from "../volume/nifti.js";
import { DEFAULT_VOLUME_OPTIONS, seriesToVolumes, type VolumeOptions } from "../volume/seriesToVolume.js";
import type { VolumeDimension } from "../volume/splitVolumes.js";
import { type FolderSeries, scanFolder } from "./scanFolder.js";

export interface ConvertReport {
  /** `volume`: which of the series' volumes (echo 2, time point 3…), absent when the series is one volume */
  written: { seriesInstanceUID: string; file: string; dims: [number, number, number]; volume?: string }[];
  failed: { seriesInstanceUID: string; code: string; message: string }[];
  unreadable: { file: string; reason: string }[];
  /** series with no image to convert (localizers, derived images, non-image objects only) */
  skipped: { seriesInstanceUID: string; reason: string }[];
  /** corrections made (tilt, irregular spacing), one line each */
  warnings: string[];
}

/** File-name suffix per kind of volume within a series. */
const PART_SUFFIX: Record<VolumeDimension, string> = {
  echo: "e",
  "image type": "i",
  "time point": "t",
  repetition: "t",
  acquisition: "a",
  orientation: "o",
};

/**
 * `delineate convert`: every series of a folder to NIfTI through the node's own series → volume stage. One series:
 * the file `out` names; several: `out` with `_s<SeriesNumber>` (and the series UID's last digits if two share a
 * number) before the extension. A series of several volumes (echoes, time points…) gets one file each, with
 * `_e<n>`, `_i<n>` (image type), `_t<n>`, `_a<n>` (acquisition) or `_o<n>` (orientation) added; a volume resampled
 * for gantry tilt or irregular spacing gets `_Tilt` / `_Eq`, as dcm2niix names them. A volume that cannot be built is
 * reported with the same refusal the node gives.
 */
export async function convertFolder(
  folder: string,
  out: string,
  options: Partial<VolumeOptions> = {},
): Promise<ConvertReport> {
  const report: ConvertReport = { written: [], failed: [], unreadable: [], skipped: [], warnings: [] };
  const { series, unreadable } = scanFolder(folder);
  // the WebAssembly decoders take a fifth of a second to load: only when a file is compressed
  const compressed = [...series.values()].some((s) => s.instances.some((i) => isEncapsulated(i.transferSyntaxUID)));
  const volumeOptions: VolumeOptions = {
    ...DEFAULT_VOLUME_OPTIONS,
    ...(compressed ? { decoders: await loadPixelDecoders() } : {}),
    ...options,
  };
  report.unreadable.push(...unreadable);
  // each series' images, left out as in the node (not images, localizers, derived images), whatever their SOP class
  const images: [string, FolderSeries, ParsedDicom[]][] = [];
  for (const [uid, s] of series) {
    const reasons = s.headers.map((h) => instanceUnsuitable(h));
    const kept = s.instances.filter((_, i) => !reasons[i]);
    if (kept.length) images.push([uid, s, kept]);
    else report.skipped.push({ seriesInstanceUID: uid, reason: [...new Set(reasons)].join(", ") });
  }
  const gz = out.endsWith(".gz");
  const base = out.replace(/\.nii(\.gz)?$/, "");
  const numbers = images.map(([, s]) => num(s.headers[0]!, "SeriesNumber"));
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  for (const [i, [uid, , instances]] of images.entries()) {
    const fail = (thrown: unknown) => {
      const err = asDelineateError(thrown);
      report.failed.push({ seriesInstanceUID: uid, code: err.code, message: err.message });
    };
    try {
      const n = numbers[i];
      const unique = numbers.filter((m) => m === n).length === 1;
      const seriesName = images.length === 1 ? base : `${base}_s${n ?? "x"}${unique ? "" : `_${uid.slice(-8)}`}`;
      const volumes = seriesToVolumes(instances, volumeOptions);
      for (const { part, plan, error } of volumes) {
        if (!plan) {
          fail(error);
          continue;
        }
        // resampled volumes are named as dcm2niix names its corrected ones
        const corrected = `${plan.resampled?.tilt ? "_Tilt" : ""}${plan.resampled?.equalised ? "_Eq" : ""}`;
        const file = `${seriesName}${part.dimension ? `_${PART_SUFFIX[part.dimension]}${part.index}` : ""}${corrected}.nii${gz ? ".gz" : ""}`;
        try {
          const description = str(instances[0]!.dataset, "SeriesDescription");
          await writeNiftiFile(file, plan.grid, plan.readSlice, description, plan.readSliceInt16);
        } catch (thrown) {
          fail(thrown); // a slice that cannot be decoded fails this volume; the series' other volumes go on
          continue;
        }
        report.written.push({
          seriesInstanceUID: uid,
          file,
          dims: plan.grid.dims,
          ...(part.dimension ? { volume: part.label } : {}),
        });
        report.warnings.push(...plan.warnings);
      }
    } catch (thrown) {
      fail(thrown);
    }
  }
  return report;
}
