import { num, nums, type ParsedDicom, str, strs } from "../dicom/dataset.js";
import { cross, dot, type Vec3 } from "./geometry.js";
import { expandFrames } from "./slicePixels.js";

/** What tells the volumes of one series apart. */
export type VolumeDimension = "echo" | "image type" | "time point" | "acquisition" | "orientation" | "repetition";

export interface VolumePart {
  /** absent when the series is one volume */
  dimension?: VolumeDimension;
  /** 1-based, in the order of the dimension's values */
  index: number;
  /** e.g. "echo 2 (EchoTime 4.92)", for messages and job warnings */
  label: string;
  instances: ParsedDicom[];
}

/** Attributes that tell volumes sharing slice positions apart, tried in this order (as dcm2niix does, roughly). */
const DIMENSIONS: readonly { dimension: VolumeDimension; keyword: string }[] = [
  { dimension: "echo", keyword: "EchoNumbers" },
  { dimension: "echo", keyword: "EchoTime" },
  { dimension: "image type", keyword: "FrameType" },
  { dimension: "image type", keyword: "ImageType" },
  { dimension: "time point", keyword: "TemporalPositionIdentifier" },
  { dimension: "time point", keyword: "TemporalPositionIndex" },
  { dimension: "acquisition", keyword: "AcquisitionNumber" },
];

/** mm: the scale positions are compared at, a pixel (at most 1 mm), so microscopy's nanometre sections stay apart */
export const positionUnit = (p: ParsedDicom | undefined): number =>
  Math.min(1, ...(nums(p?.dataset ?? {}, "PixelSpacing") ?? []).filter((v) => v > 0));

/** A slice's position along the normal, to a hundredth of the position unit. */
const positionKey = (p: ParsedDicom, normal: Vec3, unit: number) => {
  const ipp = nums(p.dataset, "ImagePositionPatient");
  return ipp && ipp.length === 3 ? String(Math.round((dot([ipp[0]!, ipp[1]!, ipp[2]!], normal) / unit) * 100)) : "?";
};
const valueKey = (p: ParsedDicom, keyword: string) => strs(p.dataset, keyword).join("\\");
const orientationKey = (p: ParsedDicom) =>
  (nums(p.dataset, "ImageOrientationPatient") ?? []).map((v) => v.toFixed(3)).join("\\");

/**
 * The volumes one series holds. A series whose slices all lie at different positions is one volume. Otherwise the
 * slices are split by the first attribute whose values leave every group with distinct positions: echo number or
 * time, frame/image type (e.g. a field map beside its magnitude), temporal position, acquisition number. Failing
 * those, when every position holds the same number of slices, by InstanceNumber order at each position
 * ("repetition", as GE numbers fMRI time points). Frames of Enhanced instances count as slices. Mixed orientations
 * are split first. What cannot be split is returned whole, for seriesToVolume to refuse with its reason.
 */
export function splitVolumes(input: readonly ParsedDicom[]): VolumePart[] {
  return split(input.flatMap(expandFrames));
}

function split(instances: readonly ParsedDicom[]): VolumePart[] {
  const byOrientation = groupBy(instances, orientationKey);
  if (byOrientation.size > 1) {
    // numbered across all orientations' volumes: two echoes of one orientation must not share an index (a file name)
    return [...byOrientation.values()]
      .flatMap((group, i) =>
        split(group).map((part) => ({
          ...part,
          label: `orientation ${i + 1} of ${byOrientation.size}${part.label ? `, ${part.label}` : ""}`,
        })),
      )
      .map((part, n) => ({ ...part, dimension: "orientation" as const, index: n + 1 }));
  }
  const whole: VolumePart[] = [{ index: 1, label: "", instances: [...instances] }];
  const iop = nums(instances[0]?.dataset ?? {}, "ImageOrientationPatient");
  if (iop?.length !== 6) return whole;
  const normal = cross([iop[0]!, iop[1]!, iop[2]!], [iop[3]!, iop[4]!, iop[5]!]);
  const unit = positionUnit(instances[0]);
  const distinctPositions = (group: readonly ParsedDicom[]) =>
    new Set(group.map((p) => positionKey(p, normal, unit))).size === group.length;
  if (distinctPositions(instances)) return whole;

  for (const { dimension, keyword } of DIMENSIONS) {
    const groups = groupBy(instances, (p) => valueKey(p, keyword));
    // every group a stack: distinct positions, and more than one (single images are not volumes)
    if (groups.size < 2 || ![...groups.values()].every((g) => g.length > 1 && distinctPositions(g))) continue;
    const keys = [...groups.keys()].sort(compareValues);
    return keys.map((k, i) => ({
      dimension,
      index: i + 1,
      label: `${dimension} ${i + 1} of ${keys.length} (${keyword} ${k || "empty"})`,
      instances: groups.get(k)!,
    }));
  }

  const byPosition = groupBy(instances, (p) => positionKey(p, normal, unit));
  const counts = new Set([...byPosition.values()].map((g) => g.length));
  // one position only: single images repeated, not volumes
  if (counts.size !== 1 || byPosition.size < 2) return whole;
  const repetitions = [...counts][0]!;
  const order = (a: ParsedDicom, b: ParsedDicom) =>
    (num(a.dataset, "InstanceNumber") ?? 0) - (num(b.dataset, "InstanceNumber") ?? 0) ||
    str(a.dataset, "AcquisitionTime").localeCompare(str(b.dataset, "AcquisitionTime"));
  const sorted = [...byPosition.values()].map((g) => [...g].sort(order));
  return Array.from({ length: repetitions }, (_, r) => ({
    dimension: "repetition" as const,
    index: r + 1,
    label: `repetition ${r + 1} of ${repetitions} (by InstanceNumber at each position)`,
    instances: sorted.map((g) => g[r]!),
  }));
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

/** Numeric values in numeric order (echo times, indices), others as text. */
function compareValues(a: string, b: string): number {
  const x = Number(a),
    y = Number(b);
  return a !== "" && b !== "" && Number.isFinite(x) && Number.isFinite(y) ? x - y : a.localeCompare(b);
}
