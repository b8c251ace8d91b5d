import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import {
  type NaturalDataset,
  type ParsedDicom,
  readPart10Lazily,
  type ScratchBuffer,
  str,
  withSopClass,
} from "../dicom/dataset.js";
import { DelineateError } from "../errors.js";

export interface FolderSeries {
  study: string;
  files: string[];
  /** each file's header; its pixels are read from the file when first needed, one instance at a time */
  instances: ParsedDicom[];
  /** the same headers, SOPClassUID filled from the meta header when the dataset has none */
  headers: NaturalDataset[];
  /** the files have no SeriesInstanceUID: grouped by study, series number, frame of reference and modality instead */
  withoutUid?: boolean;
}

/**
 * A folder's DICOM, grouped by series from headers only; files that are not readable DICOM are listed with why.
 * Files without a SeriesInstanceUID (anonymisers strip it) are grouped, as dcm2niix does, by what else they share:
 * study, SeriesNumber, FrameOfReferenceUID and Modality; the group's key then begins "no-series-uid".
 */
export function scanFolder(folder: string): {
  series: Map<string, FolderSeries>;
  unreadable: { file: string; reason: string }[];
} {
  if (!statSync(folder, { throwIfNoEntry: false })?.isDirectory())
    throw new DelineateError("DLN_ERR_CONFIG_INVALID", `${folder} is not a folder`);
  const series = new Map<string, FolderSeries>();
  const unreadable: { file: string; reason: string }[] = [];
  const scratch: ScratchBuffer = {}; // every header is read into one buffer
  for (const file of walk(folder)) {
    let instance: ParsedDicom;
    try {
      instance = readPart10Lazily(file, scratch);
    } catch (err) {
      unreadable.push({ file, reason: (err as Error).message });
      continue;
    }
    const ds = withSopClass(instance);
    const withoutUid = !str(ds, "SeriesInstanceUID");
    const uid = withoutUid
      ? `no-series-uid:${["StudyInstanceUID", "SeriesNumber", "FrameOfReferenceUID", "Modality"].map((k) => str(ds, k) || "-").join("/")}`
      : str(ds, "SeriesInstanceUID");
    const s = series.get(uid) ?? {
      study: str(ds, "StudyInstanceUID"),
      files: [],
      instances: [],
      headers: [],
      ...(withoutUid ? { withoutUid } : {}),
    };
    s.files.push(file);
    s.instances.push(instance);
    s.headers.push(ds);
    series.set(uid, s);
  }
  return { series, unreadable };
}

function* walk(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(p);
    else if (entry.isFile()) yield p;
  }
}
