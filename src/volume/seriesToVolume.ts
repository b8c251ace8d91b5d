import { num, nums, type ParsedDicom, type ScratchBuffer, str, withSopClass } from "../dicom/dataset.js";
import type { PixelDecoders, StoredFrame } from "../dicom/pixelDecoders.js";
import { DelineateError } from "../errors.js";
import { median, orientationFromIOP, sortAlongNormal, stackSpacing, stepAngle, type Vec3 } from "./geometry.js";
import { checkDeclaredSize, DEFAULT_MAX_MATRIX_SIZE, DEFAULT_MAX_VOXELS } from "./limits.js";
import { resampleStack } from "./resampleStack.js";
import { decodeSlice, decodeSliceInt16, expandFrames } from "./slicePixels.js";
import { positionUnit, splitVolumes, type VolumePart } from "./splitVolumes.js";
import type { LabelMap, SliceSource, Volume, VolumeGrid } from "./volume.js";

export interface VolumeOptions {
  /** Fewer slices than this is not a volume a 3D model can use. */
  minSlices: number;
  /** Largest angle (degrees) between the slice step and the normal before the stack counts as tilted. */
  maxTiltDegrees: number;
  /** Largest relative deviation of a slice step from the median step. */
  spacingTolerance: number;
  /** A tilted (sheared) stack: resampled onto a rectilinear grid, with a warning, or refused. */
  tilt: "correct" | "refuse";
  /** Missing slices or irregular steps: resampled to equal steps (convert), or refused. */
  irregularSpacing: "resample" | "refuse";
  /** Decoders for compressed pixel data; without them a compressed instance is refused. */
  decoders?: PixelDecoders;
  /** Limits on declared sizes, checked before allocating (src/volume/limits.ts has the defaults). */
  maxMatrixSize?: number;
  maxVoxels?: number;
}

export const DEFAULT_VOLUME_OPTIONS: Readonly<VolumeOptions> = {
  minSlices: 3,
  maxTiltDegrees: 0.05,
  spacingTolerance: 0.01,
  tilt: "correct",
  irregularSpacing: "resample",
  maxMatrixSize: DEFAULT_MAX_MATRIX_SIZE,
  maxVoxels: DEFAULT_MAX_VOXELS,
};

/** A volume's grid, from headers alone, and a reader of each of its slices' rescaled values. */
export interface VolumePlan {
  grid: VolumeGrid;
  /** decodes slice k (rescaled) into `out`, nx·ny values */
  readSlice(k: number, out: Float32Array): void;
  /**
   * readSlice into int16, with no float32 slice between (a plan that is not resampled): false when a value is not an
   * integer in int16 range, `out` then partly written
   */
  readSliceInt16?(k: number, out: Int16Array): boolean;
  /** what was corrected, for the job's warnings and convert's stderr */
  warnings: string[];
  /**
   * Set when the grid was resampled from a tilted or irregular stack (dcm2niix's `_Tilt` / `_Eq`): the stack as the
   * series holds it (each slice at its own position), and where each of its slices lies on the grid (pixel (0, 0)
   * of slice k at grid voxel (di, dj) of plane `plane`).
   */
  resampled?: {
    tilt: boolean;
    equalised: boolean;
    stack: { grid: VolumeGrid; readSlice(k: number, out: Float32Array): void };
    placement: { di: number; dj: number; plane: number }[];
  };
}

/**
 * Builds a Volume from the instances of one series: slices sorted along the normal, rescale applied, spacing and
 * direction from the headers. A tilted or irregular stack is resampled or refused as the options say; anything else
 * that is not a plain stack (mixed size or orientation, duplicate positions) is refused, not guessed.
 * @throws DelineateError DLN_ERR_VOLUME_* naming the series and what is wrong.
 */
export function seriesToVolume(input: readonly ParsedDicom[], options: VolumeOptions = DEFAULT_VOLUME_OPTIONS): Volume {
  const { grid, readSlice } = planVolume(input, options);
  return readVolume(grid, readSlice);
}

function readVolume(grid: VolumeGrid, readSlice: (k: number, out: Float32Array) => void): Volume {
  const [nx, ny, nz] = grid.dims;
  const data = new Float32Array(nx * ny * nz);
  for (let k = 0; k < nz; k++) readSlice(k, data.subarray(k * nx * ny, (k + 1) * nx * ny));
  return { ...grid, data };
}

type Refusal =
  | "DLN_ERR_VOLUME_UNSUPPORTED"
  | "DLN_ERR_VOLUME_TILT"
  | "DLN_ERR_VOLUME_SPACING"
  | "DLN_ERR_VOLUME_TOO_FEW_SLICES";
type Refuse = (code: Refusal, why: string) => DelineateError;

/** What every slice of a plain stack shares, from the first instance's header. */
interface StackHeader {
  rows: number;
  cols: number;
  iop: number[];
  pixelSpacing: number[];
  orientation: { row: Vec3; column: Vec3; normal: Vec3 };
}

/**
 * The checks and geometry of seriesToVolume, from headers only: pixels are read when a slice is asked for, so a
 * writer can stream the volume slice by slice (convert) instead of holding it whole.
 * @throws DelineateError DLN_ERR_VOLUME_* naming the series and what is wrong.
 */
export function planVolume(input: readonly ParsedDicom[], options: VolumeOptions = DEFAULT_VOLUME_OPTIONS): VolumePlan {
  checkDeclaredSize(input, options); // before frames are expanded or anything allocated
  // an Enhanced (multi-frame) instance becomes one single-frame instance per frame, so the rules below apply to both
  const instances = input.flatMap(expandFrames);
  const first = instances[0];
  const seriesInstanceUID = first ? str(first.dataset, "SeriesInstanceUID") : "";
  const refuse: Refuse = (code, why) =>
    new DelineateError(code, `series ${seriesInstanceUID || "(unknown)"}: ${why}`, { seriesInstanceUID });
  if (!first || instances.length < options.minSlices) {
    throw refuse(
      "DLN_ERR_VOLUME_TOO_FEW_SLICES",
      `${instances.length} slice(s); at least ${options.minSlices} are needed for a volume`,
    );
  }
  const ds0 = first.dataset;
  const header = stackHeader(ds0, refuse);
  const positions = slicePositions(instances, header, refuse);
  const { order, distances } = sortAlongNormal(positions, header.orientation.normal);
  const steps = distances.slice(1).map((d, i) => d - distances[i]!);
  refuseSharedPositions(instances, steps, refuse);
  const tilt = stackTilt(
    positions,
    order,
    header.orientation.normal,
    num(ds0, "GantryDetectorTilt") ?? 0,
    options,
    refuse,
  );
  const spacing = sliceSpacing(steps, distances, options, refuse);

  const grid: VolumeGrid = {
    dims: [header.cols, header.rows, order.length],
    spacing: [header.pixelSpacing[1]!, header.pixelSpacing[0]!, spacing.spacing],
    origin: positions[order[0]!]!,
    direction: [header.orientation.row, header.orientation.column, header.orientation.normal],
    studyInstanceUID: str(ds0, "StudyInstanceUID"),
    seriesInstanceUID,
    frameOfReferenceUID: str(ds0, "FrameOfReferenceUID"),
    slices: sliceSources(instances, order, positions),
  };
  const mosaics = new Map<unknown, StoredFrame>(); // a mosaic is decoded once for all its tiles
  const scratch: ScratchBuffer = {}; // one buffer for the slices read from files, each decoded before the next is read
  const readSlice = (k: number, out: Float32Array) =>
    decodeSlice(instances[order[k]!]!, out, seriesInstanceUID, options.decoders, mosaics, scratch);
  const readSliceInt16 = (k: number, out: Int16Array) =>
    decodeSliceInt16(instances[order[k]!]!, out, seriesInstanceUID, options.decoders, mosaics, scratch);
  if (!tilt.sheared && !spacing.irregular) return { grid, readSlice, readSliceInt16, warnings: [] };
  return resampledPlan({ grid, positions: order.map((i) => positions[i]!), readSlice }, tilt, spacing, steps);
}

/** Rows, Columns, orientation and pixel spacing from the first instance, refused when missing or not orthonormal. */
function stackHeader(ds0: ParsedDicom["dataset"], refuse: Refuse): StackHeader {
  const rows = num(ds0, "Rows");
  const cols = num(ds0, "Columns");
  const iop = nums(ds0, "ImageOrientationPatient");
  const pixelSpacing = nums(ds0, "PixelSpacing");
  if (!rows || !cols || !iop || !pixelSpacing || pixelSpacing.length !== 2) {
    throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", "missing Rows, Columns, ImageOrientationPatient or PixelSpacing");
  }
  const orientation = orientationFromIOP(iop);
  if (typeof orientation === "string") throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", orientation);
  return { rows, cols, iop, pixelSpacing, orientation };
}

/** Each instance's Image Position (Patient), after checking it is single-frame and shares the stack's header. */
function slicePositions(instances: readonly ParsedDicom[], header: StackHeader, refuse: Refuse): Vec3[] {
  const { rows, cols, iop, pixelSpacing } = header;
  const positions: Vec3[] = [];
  for (const [n, inst] of instances.entries()) {
    const ds = inst.dataset;
    const sop = str(ds, "SOPInstanceUID");
    if ((num(ds, "NumberOfFrames") ?? 1) > 1)
      throw refuse(
        "DLN_ERR_VOLUME_UNSUPPORTED",
        `instance ${sop} is multi-frame; only single-frame series are supported here`,
      );
    if (num(ds, "Rows") !== rows || num(ds, "Columns") !== cols)
      throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", `instance ${sop} has a different matrix size`);
    const iopN = nums(ds, "ImageOrientationPatient");
    if (!iopN || iopN.some((v, i) => Math.abs(v - iop[i]!) > 1e-4))
      throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", `instance ${sop} has a different orientation (mixed orientations)`);
    const ps = nums(ds, "PixelSpacing");
    if (!ps || ps.some((v, i) => Math.abs(v - pixelSpacing[i]!) > 1e-4))
      throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", `instance ${sop} has a different PixelSpacing`);
    const ipp = nums(ds, "ImagePositionPatient");
    if (ipp?.length !== 3)
      throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", `instance ${sop} (#${n + 1}) has no ImagePositionPatient`);
    positions.push([ipp[0]!, ipp[1]!, ipp[2]!]);
  }
  return positions;
}

/** Refuses two slices at one position: several volumes in one series, named when splitVolumes can tell them apart. */
function refuseSharedPositions(instances: readonly ParsedDicom[], steps: readonly number[], refuse: Refuse): void {
  const samePosition = 1e-3 * positionUnit(instances[0]);
  if (!steps.some((s) => s < samePosition)) return;
  const parts = splitVolumes(instances);
  const what =
    parts.length > 1
      ? `: it holds ${parts.length} volumes told apart by ${parts[0]!.dimension} (convert writes each; a model takes one)`
      : " (several acquisitions, echoes or time points)";
  throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", `two or more slices share a position${what}`);
}

/** Whether the stack is sheared (gantry tilt), and by how many degrees; refused when the options say so. */
function stackTilt(
  positions: readonly Vec3[],
  order: readonly number[],
  normal: Vec3,
  headerTilt: number,
  options: VolumeOptions,
  refuse: Refuse,
): { sheared: boolean; tiltDegrees: number } {
  const maxAngle =
    (Math.max(...order.slice(1).map((idx, i) => stepAngle(positions[order[i]!]!, positions[idx]!, normal))) * 180) /
    Math.PI;
  // the shear is what matters: a header tilt over slices already stacked along the normal leaves nothing to correct
  const sheared = maxAngle > options.maxTiltDegrees;
  const tiltDegrees = Math.abs(headerTilt) > 0 ? headerTilt : maxAngle;
  if ((sheared || Math.abs(headerTilt) > options.maxTiltDegrees) && options.tilt === "refuse") {
    throw refuse(
      "DLN_ERR_VOLUME_TILT",
      `gantry tilt of ${tiltDegrees.toFixed(2)}°: slices are sheared, not a rectilinear volume (tilt correction is off: volume.tilt is "refuse")`,
    );
  }
  return { sheared, tiltDegrees };
}

/** The slice spacing, and whether the steps are irregular (missing slices, uneven steps); refused when the options say so. */
function sliceSpacing(
  steps: readonly number[],
  distances: readonly number[],
  options: VolumeOptions,
  refuse: Refuse,
): { spacing: number; step: number; irregular: boolean; stepsText: string } {
  const step = median(steps);
  const irregular = Math.max(...steps.map((s) => Math.abs(s - step))) > options.spacingTolerance * step;
  // a regular stack's spacing from its extent, so its far slice lies on the last image; an irregular one's extent
  // spans a gap or uneven steps, so it keeps the median step (its grid is resampled anyway)
  const spacing = irregular ? step : stackSpacing(distances);
  const stepsText = `median ${step.toFixed(3)} mm, steps from ${Math.min(...steps).toFixed(3)} to ${Math.max(...steps).toFixed(3)} mm`;
  if (irregular && options.irregularSpacing === "refuse") {
    throw refuse(
      "DLN_ERR_VOLUME_SPACING",
      `slice spacing is not regular (${stepsText}): missing slices or irregular spacing`,
    );
  }
  return { spacing, step, irregular, stepsText };
}

/** The slices in stack order: each one's SOP Instance and Class UIDs, position, and frame (from an Enhanced instance). */
function sliceSources(
  instances: readonly ParsedDicom[],
  order: readonly number[],
  positions: readonly Vec3[],
): SliceSource[] {
  return order.map((idx) => {
    const inst = instances[idx]!;
    const frame = num(inst.dataset, "ReferencedFrameNumber");
    return {
      sopInstanceUID: str(inst.dataset, "SOPInstanceUID"),
      sopClassUID: str(withSopClass(inst), "SOPClassUID"),
      position: positions[idx]!,
      ...(frame ? { frameNumber: frame } : {}),
    };
  });
}

/** A sheared or irregular stack's plan: resampled onto a rectilinear grid, with the warning that says so. */
function resampledPlan(
  stack: { grid: VolumeGrid; positions: Vec3[]; readSlice(k: number, out: Float32Array): void },
  tilt: { sheared: boolean; tiltDegrees: number },
  spacing: { spacing: number; step: number; irregular: boolean; stepsText: string },
  steps: readonly number[],
): VolumePlan {
  const { grid, readSlice } = stack;
  const { sheared, tiltDegrees } = tilt;
  const { irregular, step } = spacing;
  // irregular: planes at the smallest step that is not an odd close pair (under half the median), so a missing
  // slice's neighbours stay planes of their own and alternating steps lose nothing
  const planeStep = irregular ? Math.min(...steps.filter((s) => s >= step / 2)) : spacing.spacing;
  const r = resampleStack(stack, planeStep, irregular);
  const [mx, my, mz] = r.grid.dims;
  const onto = `resampled onto a rectilinear grid of ${mx}×${my}×${mz}, planes ${planeStep.toFixed(3)} mm apart`;
  const what = [
    sheared ? `gantry tilt of ${tiltDegrees.toFixed(2)}° corrected` : "",
    irregular ? `slice spacing is not regular (${spacing.stepsText})` : "",
  ];
  const warnings = [`series ${grid.seriesInstanceUID}: ${what.filter(Boolean).join(" and ")}: ${onto}`];
  return {
    grid: r.grid,
    readSlice: r.readSlice,
    warnings,
    resampled: { tilt: sheared, equalised: irregular, stack: { grid, readSlice }, placement: r.placement },
  };
}

/** Every volume of a series (`convert`): one per part that splitVolumes finds, each planned or refused on its own. */
export function seriesToVolumes(
  instances: readonly ParsedDicom[],
  options: VolumeOptions = DEFAULT_VOLUME_OPTIONS,
): { part: VolumePart; plan?: VolumePlan; error?: unknown }[] {
  return splitVolumes(instances).map((part) => {
    try {
      return { part, plan: planVolume(part.instances, options) };
    } catch (error) {
      return { part, error };
    }
  });
}

/** Where one source slice lies on a resampled grid: its pixel (0, 0) at voxel (di, dj) of plane `plane`. */
export interface SlicePlacement {
  di: number;
  dj: number;
  plane: number;
}

/**
 * The way back from a corrected (resampled) volume to the series' own images: the stack as the series holds it (each
 * slice at its own position, what SEG frames and RTSTRUCT contours must lie on) and where each of its slices lies on
 * the corrected grid. labelsOnStack(labels, volume.dims, placement) carries labels back with it.
 */
export interface SourceStack {
  volume: Volume;
  placement: SlicePlacement[];
}

/** What a model runs on, and, when that volume was resampled (tilt), the record that leads back to the source. */
export interface ModelVolume {
  volume: Volume;
  warnings: string[];
  /** set only when `volume` was resampled; without it the volume's planes are the source images */
  source?: SourceStack;
}

/**
 * The one volume a model gets from a series. Several acquisitions at the same positions (a repeated scan): the
 * acquisition with the most slices (of equals, the last) is used, and a warning says which and what was left out.
 * Several echoes, image types, time points or orientations: refused, since which one a model wants is not ours to
 * guess. A tilted stack is corrected (unless the options refuse it); missing slices and irregular spacing are always
 * refused here, since planes between the source images could not carry outputs back onto them.
 */
export function volumeForModel(
  instances: readonly ParsedDicom[],
  options: VolumeOptions = DEFAULT_VOLUME_OPTIONS,
): ModelVolume {
  const parts = splitVolumes(instances);
  // one part holds the frames already expanded; several that are not acquisitions are refused by planVolume
  if (parts.length === 1) return modelVolume(parts[0]!.instances, options, []);
  if (parts[0]!.dimension !== "acquisition") return modelVolume(instances, options, []);
  const chosen = parts.reduce((best, p) => (p.instances.length >= best.instances.length ? p : best));
  const left = parts.filter((p) => p !== chosen).map((p) => `${p.label}, ${p.instances.length} slices`);
  const series = str(instances[0]!.dataset, "SeriesInstanceUID");
  return modelVolume(chosen.instances, options, [
    `series ${series} holds ${parts.length} acquisitions at the same positions: used ${chosen.label} (${chosen.instances.length} slices); left out ${left.join("; ")}`,
  ]);
}

function modelVolume(instances: readonly ParsedDicom[], options: VolumeOptions, warnings: string[]): ModelVolume {
  const plan = planVolume(instances, { ...options, irregularSpacing: "refuse" });
  const volume = readVolume(plan.grid, plan.readSlice);
  const all = [...warnings, ...plan.warnings];
  if (!plan.resampled) return { volume, warnings: all };
  const { stack, placement } = plan.resampled;
  return { volume, warnings: all, source: { volume: readVolume(stack.grid, stack.readSlice), placement } };
}

/**
 * Labels on a resampled grid carried back onto the stack's slices: each source pixel takes the label of the grid
 * voxel it falls nearest to on its own plane. Tilt correction shifts slices in-plane only, at the same resolution,
 * so this moves a boundary by at most half a pixel.
 */
export function labelsOnStack(
  labels: LabelMap,
  dims: [number, number, number],
  placement: readonly SlicePlacement[],
): LabelMap {
  const [nx, ny, nz] = dims;
  const [mx, my] = labels.dims;
  const out = new Uint8Array(nx * ny * nz);
  for (let k = 0; k < nz; k++) {
    const { di, dj, plane } = placement[k]!;
    for (let y = 0; y < ny; y++) {
      const j = Math.round(y + dj);
      if (j < 0 || j >= my) continue;
      for (let x = 0; x < nx; x++) {
        const i = Math.round(x + di);
        if (i >= 0 && i < mx) out[(k * ny + y) * nx + x] = labels.data[(plane * my + j) * mx + i]!;
      }
    }
  }
  return { dims, data: out };
}
