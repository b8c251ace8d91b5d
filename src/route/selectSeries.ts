import { str, strs, type NaturalDataset } from "../dicom/dataset.js";
import { DelineateError } from "../errors.js";

export const CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2";

export interface SeriesCandidate {
  /** QIDO-RS series attributes */
  series: NaturalDataset;
  /** WADO-RS metadata of its instances; absent for series that were not looked into (not the modality) */
  instances?: NaturalDataset[];
}

export interface SeriesChoice {
  seriesInstanceUID: string;
  instanceCount: number;
  /** every other series and why it was not taken */
  skipped: { seriesInstanceUID: string; reason: string }[];
}

/** Why an instance is not an image a segmentation model can be run on, or undefined when it is. */
export function instanceUnsuitable(inst: NaturalDataset): string | undefined {
  const sopClass = str(inst, "SOPClassUID");
  // Some files carry an empty SOPClassUID (its meta header says CT); judge those by their image attributes.
  if (sopClass && sopClass !== CT_IMAGE_STORAGE) return `SOP class ${sopClass} is not CT Image Storage`;
  if (!inst.Rows || !inst.Columns) return "not an image (no Rows/Columns)";
  const imageType = strs(inst, "ImageType").map((t) => t.toUpperCase());
  if (imageType.includes("LOCALIZER")) return "localizer";
  if (imageType[0] === "DERIVED") return "derived image";
  return undefined;
}

/**
 * Picks the CT series to segment: CT modality, CT Image Storage instances that are neither localizers
 * nor derived; of those, the one with the most usable instances.
 * @throws DelineateError DLN_ERR_NO_SERIES listing every series and why it was passed over.
 */
export function selectCtSeries(studyInstanceUID: string, candidates: readonly SeriesCandidate[]): SeriesChoice {
  const skipped: SeriesChoice["skipped"] = [];
  let best: { uid: string; count: number } | undefined;
  for (const c of candidates) {
    const uid = str(c.series, "SeriesInstanceUID");
    const modality = str(c.series, "Modality");
    if (modality !== "CT") {
      skipped.push({ seriesInstanceUID: uid, reason: `modality ${modality || "(none)"}` });
      continue;
    }
    const instances = c.instances ?? [];
    const reasons = new Map<string, number>();
    let usable = 0;
    for (const inst of instances) {
      const why = instanceUnsuitable(inst);
      if (why) reasons.set(why, (reasons.get(why) ?? 0) + 1);
      else usable++;
    }
    if (usable === 0) {
      const why = [...reasons.entries()].map(([r, n]) => `${n}× ${r}`).join(", ") || "no instances";
      skipped.push({ seriesInstanceUID: uid, reason: why });
      continue;
    }
    if (!best || usable > best.count) {
      if (best) skipped.push({ seriesInstanceUID: best.uid, reason: `fewer images (${best.count}) than another CT series` });
      best = { uid, count: usable };
    } else skipped.push({ seriesInstanceUID: uid, reason: `fewer images (${usable}) than another CT series` });
  }
  if (!best) {
    const detail = skipped.map((s) => `${s.seriesInstanceUID}: ${s.reason}`).join("; ") || "the study has no series";
    throw new DelineateError("DLN_ERR_NO_SERIES", `study ${studyInstanceUID} has no CT image series to segment (${detail})`, { studyInstanceUID });
  }
  return { seriesInstanceUID: best.uid, instanceCount: best.count, skipped };
}
