import { type NaturalDataset, nums, str, strs } from "../dicom/dataset.js";
import { orientationFromIOP } from "../volume/geometry.js";

export type Plane = "axial" | "coronal" | "sagittal" | "oblique";

/** Which series a model takes: the model's modality plus the site's routing criteria (config `route`). */
export interface RouteRule {
  modality: string;
  sopClassUIDs: readonly string[];
  /** case-insensitive regular expressions on SeriesDescription */
  seriesDescription?: { include?: string; exclude?: string };
  bodyPartExamined?: readonly string[];
  /** case-insensitive regular expression on Manufacturer */
  manufacturer?: string;
  orientation?: readonly Plane[];
  minSlices?: number;
  maxSlices?: number;
}

export interface SeriesCandidate {
  /** QIDO-RS series attributes */
  series: NaturalDataset;
  /** WADO-RS metadata of its instances; absent for series that were not looked into (not the modality) */
  instances?: NaturalDataset[];
}

export interface SeriesChoice {
  /** null when no series fits */
  seriesInstanceUID: string | null;
  instanceCount: number;
  /** every other series and why it was not taken */
  skipped: { seriesInstanceUID: string; reason: string }[];
  /** why no series was taken */
  reason?: string;
}

/**
 * Why an instance is not an image the model can be run on (not an image, a localizer, a derived image, or, when
 * `sopClassUIDs` is given, another SOP class), or undefined when it is.
 */
export function instanceUnsuitable(inst: NaturalDataset, sopClassUIDs?: readonly string[]): string | undefined {
  const sopClass = str(inst, "SOPClassUID");
  // Some files carry an empty SOPClassUID (their meta header says CT); judge those by their image attributes.
  if (sopClassUIDs && sopClass && !sopClassUIDs.includes(sopClass))
    return `SOP class ${sopClass} is not one the model takes`;
  if (!inst.Rows || !inst.Columns) return "not an image (no Rows/Columns)";
  const imageType = strs(inst, "ImageType").map((t) => t.toUpperCase());
  if (imageType.includes("LOCALIZER")) return "localizer";
  if (imageType[0] === "DERIVED") return "derived image";
  return undefined;
}

/** The anatomical plane of an ImageOrientationPatient: the axis its normal follows within 8°, else oblique. */
export function planeOf(iop: readonly number[] | undefined): Plane | undefined {
  if (!iop) return undefined;
  const o = orientationFromIOP(iop);
  if (typeof o === "string") return undefined;
  const [x, y, z] = o.normal.map(Math.abs) as [number, number, number];
  const limit = Math.cos((8 * Math.PI) / 180);
  return z >= limit ? "axial" : y >= limit ? "coronal" : x >= limit ? "sagittal" : "oblique";
}

/** Why a series fails the rule, or undefined when it passes; `usable` are its instances the model can take. */
function seriesMismatch(c: SeriesCandidate, usable: NaturalDataset[], rule: RouteRule): string | undefined {
  const modality = str(c.series, "Modality");
  if (modality !== rule.modality) return `modality ${modality || "(none)"}`;
  const description = str(c.series, "SeriesDescription") || str(usable[0] ?? {}, "SeriesDescription");
  if (rule.seriesDescription?.include && !new RegExp(rule.seriesDescription.include, "i").test(description)) {
    return `series description "${description}" does not match /${rule.seriesDescription.include}/i`;
  }
  if (rule.seriesDescription?.exclude && new RegExp(rule.seriesDescription.exclude, "i").test(description)) {
    return `series description "${description}" matches the excluded /${rule.seriesDescription.exclude}/i`;
  }
  const first = usable[0];
  if (!first) return undefined; // the caller reports why no instance is usable
  const bodyPart = str(first, "BodyPartExamined").toUpperCase();
  if (rule.bodyPartExamined && !rule.bodyPartExamined.map((b) => b.toUpperCase()).includes(bodyPart)) {
    return `body part ${bodyPart || "(none)"} is not one of ${rule.bodyPartExamined.join(", ")}`;
  }
  const manufacturer = str(first, "Manufacturer");
  if (rule.manufacturer && !new RegExp(rule.manufacturer, "i").test(manufacturer))
    return `manufacturer "${manufacturer}" does not match /${rule.manufacturer}/i`;
  const plane = planeOf(nums(first, "ImageOrientationPatient"));
  if (rule.orientation && (!plane || !rule.orientation.includes(plane)))
    return `orientation ${plane ?? "(unknown)"} is not one of ${rule.orientation.join(", ")}`;
  if (rule.minSlices !== undefined && usable.length < rule.minSlices)
    return `${usable.length} images, fewer than ${rule.minSlices}`;
  if (rule.maxSlices !== undefined && usable.length > rule.maxSlices)
    return `${usable.length} images, more than ${rule.maxSlices}`;
  return undefined;
}

/**
 * Picks the series to segment: the model's modality, instances of a SOP class it takes that are neither
 * localizers nor derived, passing the site's rule; of those, the one with the most usable instances. When none
 * fits, the reason lists every series and why it was passed over.
 */
export function selectSeries(
  studyInstanceUID: string,
  candidates: readonly SeriesCandidate[],
  rule: RouteRule,
): SeriesChoice {
  const skipped: SeriesChoice["skipped"] = [];
  let best: { uid: string; count: number } | undefined;
  for (const c of candidates) {
    const uid = str(c.series, "SeriesInstanceUID");
    const reasons = new Map<string, number>();
    const usable: NaturalDataset[] = [];
    for (const inst of c.instances ?? []) {
      const why = instanceUnsuitable(inst, rule.sopClassUIDs);
      if (why) reasons.set(why, (reasons.get(why) ?? 0) + 1);
      else usable.push(inst);
    }
    const mismatch = seriesMismatch(c, usable, rule);
    if (mismatch) {
      skipped.push({ seriesInstanceUID: uid, reason: mismatch });
      continue;
    }
    if (usable.length === 0) {
      skipped.push({
        seriesInstanceUID: uid,
        reason: [...reasons.entries()].map(([r, n]) => `${n}× ${r}`).join(", ") || "no instances",
      });
      continue;
    }
    if (!best || usable.length > best.count) {
      if (best)
        skipped.push({
          seriesInstanceUID: best.uid,
          reason: `fewer images (${best.count}) than another matching series`,
        });
      best = { uid, count: usable.length };
    } else
      skipped.push({ seriesInstanceUID: uid, reason: `fewer images (${usable.length}) than another matching series` });
  }
  if (!best) {
    const detail = skipped.map((s) => `${s.seriesInstanceUID}: ${s.reason}`).join("; ") || "the study has no series";
    return {
      seriesInstanceUID: null,
      instanceCount: 0,
      skipped,
      reason: `study ${studyInstanceUID} has no ${rule.modality} image series to segment (${detail})`,
    };
  }
  return { seriesInstanceUID: best.uid, instanceCount: best.count, skipped };
}
