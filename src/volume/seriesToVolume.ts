import { DelineateError } from "../errors.js";
import { num, nums, str, withSopClass, type NaturalDataset, type ParsedDicom } from "../dicom/dataset.js";
import { median, orientationFromIOP, sortAlongNormal, stepAngle, type Vec3 } from "./geometry.js";
import type { SliceSource, Volume } from "./volume.js";

export interface VolumeOptions {
  /** Fewer slices than this is not a volume a 3D model can use. */
  minSlices: number;
  /** Largest angle (degrees) between the slice step and the normal before the stack counts as tilted. */
  maxTiltDegrees: number;
  /** Largest relative deviation of a slice step from the median step. */
  spacingTolerance: number;
}

export const DEFAULT_VOLUME_OPTIONS: Readonly<VolumeOptions> = { minSlices: 3, maxTiltDegrees: 0.05, spacingTolerance: 0.01 };

const UNCOMPRESSED = new Set(["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]);

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
    throw refuse("DLN_ERR_VOLUME_UNSUPPORTED", "two or more slices share a position (several acquisitions, echoes or time points)");
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
  for (const [k, idx] of order.entries()) {
    const inst = instances[idx]!;
    decodeInto(inst, data.subarray(k * nx * ny, (k + 1) * nx * ny), seriesInstanceUID);
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

/** Decodes one uncompressed greyscale slice into `out`, masking unused high bits and applying the rescale. */
function decodeInto(inst: ParsedDicom, out: Float32Array, seriesInstanceUID: string): void {
  const ds = inst.dataset;
  const sop = str(ds, "SOPInstanceUID");
  const bad = (why: string) => new DelineateError("DLN_ERR_VOLUME_UNSUPPORTED", `series ${seriesInstanceUID}, instance ${sop}: ${why}`, { seriesInstanceUID, sopInstanceUID: sop });
  if (!UNCOMPRESSED.has(inst.transferSyntaxUID)) throw bad(`transfer syntax ${inst.transferSyntaxUID} is not decoded here (ask the PACS for Explicit VR Little Endian)`);
  if ((num(ds, "SamplesPerPixel") ?? 1) !== 1) throw bad("not a greyscale image (SamplesPerPixel ≠ 1)");
  const bitsAllocated = num(ds, "BitsAllocated");
  const bitsStored = num(ds, "BitsStored") ?? bitsAllocated;
  const signed = num(ds, "PixelRepresentation") === 1;
  if ((bitsAllocated !== 16 && bitsAllocated !== 8) || !bitsStored || bitsStored > bitsAllocated) throw bad(`BitsAllocated ${bitsAllocated} / BitsStored ${bitsStored} is not supported`);
  const slope = num(ds, "RescaleSlope") ?? 1;
  const intercept = num(ds, "RescaleIntercept") ?? 0;
  const pixelData = ds.PixelData;
  const buf = Array.isArray(pixelData) ? pixelData[0] : pixelData;
  if (!(buf instanceof ArrayBuffer)) throw bad("no pixel data");
  const n = out.length;
  const raw = bitsAllocated === 16 ? new Uint16Array(buf, 0, Math.min(n, buf.byteLength >> 1)) : new Uint8Array(buf, 0, Math.min(n, buf.byteLength));
  if (raw.length < n) throw bad(`pixel data holds ${raw.length} of ${n} pixels (truncated)`);
  const shift = 32 - bitsStored;
  const mask = bitsStored >= 32 ? 0xffffffff : (1 << bitsStored) - 1;
  for (let i = 0; i < n; i++) {
    const v = raw[i]!;
    const stored = signed ? ((v << shift) >> shift) : v & mask;
    out[i] = stored * slope + intercept;
  }
}

/** The first item of a naturalised sequence (dcmjs gives an array, or the item itself). */
function item(seq: unknown): NaturalDataset | undefined {
  return (Array.isArray(seq) ? seq[0] : seq) as NaturalDataset | undefined;
}

/**
 * An Enhanced multi-frame instance (PerFrameFunctionalGroupsSequence) as one single-frame instance per frame: each
 * frame's position, orientation, pixel spacing and rescale from its own functional groups or the shared ones, and
 * its slice of the pixel data. Other instances pass through unchanged; so does a multi-frame instance without
 * functional groups, which the checks then refuse.
 */
export function expandFrames(inst: ParsedDicom): ParsedDicom[] {
  const ds = inst.dataset;
  const frames = num(ds, "NumberOfFrames") ?? 1;
  const perFrame = ds.PerFrameFunctionalGroupsSequence as NaturalDataset[] | undefined;
  if (frames <= 1 || !Array.isArray(perFrame) || perFrame.length !== frames) return [inst];
  const shared = item(ds.SharedFunctionalGroupsSequence) ?? {};
  const group = (f: NaturalDataset, name: string) => item(f[name]) ?? item(shared[name]);
  const rows = num(ds, "Rows") ?? 0, cols = num(ds, "Columns") ?? 0;
  const frameBytes = rows * cols * ((num(ds, "BitsAllocated") ?? 16) >> 3);
  const pixelData = ds.PixelData;
  const buf = Array.isArray(pixelData) ? pixelData[0] : pixelData;
  const { PerFrameFunctionalGroupsSequence: _p, SharedFunctionalGroupsSequence: _s, PixelData: _d, ...common } = ds;
  return perFrame.map((f, i) => {
    const measures = group(f, "PixelMeasuresSequence");
    const transform = group(f, "PixelValueTransformationSequence");
    return {
      ...inst,
      dataset: {
        ...common,
        NumberOfFrames: 1,
        ReferencedFrameNumber: i + 1,
        ImagePositionPatient: group(f, "PlanePositionSequence")?.ImagePositionPatient,
        ImageOrientationPatient: group(f, "PlaneOrientationSequence")?.ImageOrientationPatient,
        PixelSpacing: measures?.PixelSpacing,
        ...(measures?.SliceThickness !== undefined ? { SliceThickness: measures.SliceThickness } : {}),
        ...(transform ? { RescaleSlope: transform.RescaleSlope, RescaleIntercept: transform.RescaleIntercept } : {}),
        PixelData: buf instanceof ArrayBuffer ? [buf.slice(i * frameBytes, (i + 1) * frameBytes)] : undefined,
      },
    };
  });
}
