import { DelineateError } from "../errors.js";
import { num, nums, str, withSopClass, type ParsedDicom } from "../dicom/dataset.js";
import { median, orientationFromIOP, sortAlongNormal, stepAngle, type Vec3 } from "./geometry.js";
import type { SliceSource, Volume } from "./volume.js";
import { decodeSlice, expandFrames } from "./slicePixels.js";
import { splitVolumes, type VolumePart } from "./splitVolumes.js";
import type { PixelDecoders, StoredFrame } from "../dicom/pixelDecoders.js";

export interface VolumeOptions {
  /** Fewer slices than this is not a volume a 3D model can use. */
  minSlices: number;
  /** Largest angle (degrees) between the slice step and the normal before the stack counts as tilted. */
  maxTiltDegrees: number;
  /** Largest relative deviation of a slice step from the median step. */
  spacingTolerance: number;
  /** Decoders for compressed pixel data; without them a compressed instance is refused. */
  decoders?: PixelDecoders;
}

export const DEFAULT_VOLUME_OPTIONS: Readonly<VolumeOptions> = { minSlices: 3, maxTiltDegrees: 0.05, spacingTolerance: 0.01 };

/**
 * Builds a Volume from the instances of one single-frame series: slices sorted along the normal,
 * rescale applied, spacing and direction from the headers. Anything that is not a plain regular stack
 * (multi-frame, mixed size or orientation, tilt, gaps, duplicates) is refused, not guessed.
 * @throws DelineateError DLN_ERR_VOLUME_* naming the series and what is wrong.
 */
export function seriesToVolume(input: readonly ParsedDicom[], options: VolumeOptions = DEFAULT_VOLUME_OPTIONS): Volume {
  // an Enhanced (multi-frame) instance becomes one single-frame instance per frame, so the rules below apply to both
  const instances = input.flatMap(expandFrames);
  const first = instances[0];
  const seriesInstanceUID = first ? str(first.dataset, "SeriesInstanceUID") : "";
  const ctx = { seriesInstanceUID };
  const refuse = (code: "DLN_ERR_VOLUME_UNSUPPORTED" | "DLN_ERR_VOLUME_TILT" | "DLN_ERR_VOLUME_SPACING" | "DLN_ERR_VOLUME_TOO_FEW_SLICES", why: string) =>
    new DelineateError(code, `series ${seriesInstanceUID || "(unknown)"}: ${why}`, ctx);

  if (!first || instances.length < options.minSlices) {
    throw refuse("DLN_ERR_VOLUME_TOO_FEW_SLICES", `${instances.length} slice(s); at least ${options.minSlices} are needed for a volume`);
  }
  const ds0 = first.dataset;
  const rows = num(ds0, "Rows");
  const cols = num(ds0, "Columns");
  const iop = nums(ds0, "ImageOrientationPatient");
  const pixelSpacing = nums(ds0, "PixelSpacing");
  if (!rows || !cols || !iop || !pixelSpacing || pixelSpacing.length !== 2) {
    throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", "missing Rows, Columns, ImageOrientationPatient or PixelSpacing");
  }
  const orientation = orientationFromIOP(iop);
  if (typeof orientation === "string") throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", orientation);

  const positions: Vec3[] = [];
  for (const [n, inst] of instances.entries()) {
    const ds = inst.dataset;
    const sop = str(ds, "SOPInstanceUID");
    if ((num(ds, "NumberOfFrames") ?? 1) > 1) throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", `instance ${sop} is multi-frame; only single-frame series are supported here`);
    if (num(ds, "Rows") !== rows || num(ds, "Columns") !== cols) throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", `instance ${sop} has a different matrix size`);
    const iopN = nums(ds, "ImageOrientationPatient");
    if (!iopN || iopN.some((v, i) => Math.abs(v - iop[i]!) > 1e-4)) throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", `instance ${sop} has a different orientation (mixed orientations)`);
    const ps = nums(ds, "PixelSpacing");
    if (!ps || ps.some((v, i) => Math.abs(v - pixelSpacing[i]!) > 1e-4)) throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", `instance ${sop} has a different PixelSpacing`);
    const ipp = nums(ds, "ImagePositionPatient");
    if (!ipp || ipp.length !== 3) throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", `instance ${sop} (#${n + 1}) has no ImagePositionPatient`);
    positions.push([ipp[0]!, ipp[1]!, ipp[2]!]);
  }

  const tilt = num(ds0, "GantryDetectorTilt") ?? 0;
  const { order, distances } = sortAlongNormal(positions, orientation.normal);
  const steps = distances.slice(1).map((d, i) => d - distances[i]!);
  if (steps.some((s) => s < 1e-3)) {
    const parts = splitVolumes(instances);
    const what = parts.length > 1 ? `: it holds ${parts.length} volumes told apart by ${parts[0]!.dimension} (convert writes each; a model takes one)` : " (several acquisitions, echoes or time points)";
    throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", `two or more slices share a position${what}`);
  }
  const maxAngle = Math.max(...order.slice(1).map((idx, i) => stepAngle(positions[order[i]!]!, positions[idx]!, orientation.normal)));
  if (Math.abs(tilt) > options.maxTiltDegrees || (maxAngle * 180) / Math.PI > options.maxTiltDegrees) {
    const deg = Math.abs(tilt) > 0 ? tilt : (maxAngle * 180) / Math.PI;
    throw refuse("DLN_ERR_VOLUME_TILT", `gantry tilt of ${deg.toFixed(2)}°: slices are sheared, not a rectilinear volume (tilt correction is not enabled)`);
  }
  const step = median(steps);
  const worst = Math.max(...steps.map((s) => Math.abs(s - step)));
  if (worst > options.spacingTolerance * step) {
    throw refuse(
      "DLN_ERR_VOLUME_SPACING",
      `slice spacing is not regular (median ${step.toFixed(3)} mm, steps from ${Math.min(...steps).toFixed(3)} to ${Math.max(...steps).toFixed(3)} mm): missing slices or irregular spacing`,
    );
  }

  const nx = cols, ny = rows, nz = order.length;
  const data = new Float32Array(nx * ny * nz);
  const slices: SliceSource[] = [];
  const mosaics = new Map<unknown, StoredFrame>();
  for (const [k, idx] of order.entries()) {
    const inst = instances[idx]!;
    decodeSlice(inst, data.subarray(k * nx * ny, (k + 1) * nx * ny), seriesInstanceUID, options.decoders, mosaics);
    const frame = num(inst.dataset, "ReferencedFrameNumber");
    slices.push({
      sopInstanceUID: str(inst.dataset, "SOPInstanceUID"),
      sopClassUID: str(withSopClass(inst), "SOPClassUID"),
      position: positions[idx]!,
      ...(frame ? { frameNumber: frame } : {}),
    });
  }
  return {
    dims: [nx, ny, nz],
    spacing: [pixelSpacing[1]!, pixelSpacing[0]!, step],
    origin: positions[order[0]!]!,
    direction: [orientation.row, orientation.column, orientation.normal],
    data,
    studyInstanceUID: str(ds0, "StudyInstanceUID"),
    seriesInstanceUID,
    frameOfReferenceUID: str(ds0, "FrameOfReferenceUID"),
    slices,
  };
}


/** Every volume of a series (`convert`): one per part that splitVolumes finds, each built or refused on its own. */
export function seriesToVolumes(instances: readonly ParsedDicom[], options: VolumeOptions = DEFAULT_VOLUME_OPTIONS): { part: VolumePart; volume?: Volume; error?: unknown }[] {
  return splitVolumes(instances).map((part) => {
    try {
      return { part, volume: seriesToVolume(part.instances, options) };
    } catch (error) {
      return { part, error };
    }
  });
}

/**
 * The one volume a model gets from a series. Several acquisitions at the same positions (a repeated scan): the
 * acquisition with the most slices (of equals, the last) is used, and a warning says which and what was left out.
 * Several echoes, image types, time points or orientations: refused, since which one a model wants is not ours to
 * guess.
 */
export function volumeForModel(instances: readonly ParsedDicom[], options: VolumeOptions = DEFAULT_VOLUME_OPTIONS): { volume: Volume; warnings: string[] } {
  const parts = splitVolumes(instances);
  // one part holds the frames already expanded; several that are not acquisitions are refused by seriesToVolume
  if (parts.length === 1) return { volume: seriesToVolume(parts[0]!.instances, options), warnings: [] };
  if (parts[0]!.dimension !== "acquisition") return { volume: seriesToVolume(instances, options), warnings: [] };
  const chosen = parts.reduce((best, p) => (p.instances.length >= best.instances.length ? p : best));
  const volume = seriesToVolume(chosen.instances, options);
  const left = parts.filter((p) => p !== chosen).map((p) => `${p.label}, ${p.instances.length} slices`);
  return { volume, warnings: [`series ${volume.seriesInstanceUID} holds ${parts.length} acquisitions at the same positions: used ${chosen.label} (${chosen.instances.length} slices); left out ${left.join("; ")}`] };
}
