import { existsSync } from "node:fs";
import { readdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { type NaturalDataset, readPart10Lazily } from "../dicom/dataset.js";

/**
 * The header fields routing reads from a pushed instance (src/route: series selection and rules), kept beside it as
 * `<sop>.dcm.json` when it is received. Routing a pushed study read every file's header with dcmjs, on the event
 * loop, once per pass and again per series (a study with deeply nested sequences took 5 s a pass, /healthz
 * unanswered); it now reads these small files.
 */
export const INDEX_FIELDS = [
  "StudyInstanceUID",
  "SeriesInstanceUID",
  "SOPInstanceUID",
  "SOPClassUID",
  "Modality",
  "SeriesDescription",
  "SeriesNumber",
  "BodyPartExamined",
  "Manufacturer",
  "ImageType",
  "ImageOrientationPatient",
  "ImagePositionPatient",
  "InstanceNumber",
  "NumberOfFrames",
  "Rows",
  "Columns",
] as const;

/** An instance's index entry: INDEX_FIELDS of its header, those it has. */
export function indexEntry(dataset: NaturalDataset): NaturalDataset {
  const entry: NaturalDataset = {};
  for (const f of INDEX_FIELDS) if (dataset[f] !== undefined) entry[f] = dataset[f];
  return entry;
}

/** Writes the entry of the instance kept as `file` (to a temporary name, then renamed: never half an entry). */
export async function writeIndexEntry(file: string, entry: NaturalDataset): Promise<void> {
  await writeFile(`${file}.json.part`, JSON.stringify(entry));
  await rename(`${file}.json.part`, `${file}.json`);
}

/**
 * Every instance kept in a study folder, with its index entry. An instance kept without an entry (by a version
 * before the index, or a crash between the two writes) is read from its header once and its entry written.
 */
export async function readStudyIndex(dir: string): Promise<{ file: string; entry: NaturalDataset }[]> {
  if (!existsSync(dir)) return [];
  const names = new Set(await readdir(dir));
  const out: { file: string; entry: NaturalDataset }[] = [];
  for (const name of names) {
    if (!name.endsWith(".dcm")) continue;
    const file = path.join(dir, name);
    let entry: NaturalDataset;
    if (names.has(`${name}.json`)) entry = JSON.parse(await readFile(`${file}.json`, "utf8")) as NaturalDataset;
    else {
      entry = indexEntry(readPart10Lazily(file).dataset);
      await writeIndexEntry(file, entry);
    }
    out.push({ file, entry });
  }
  return out;
}
