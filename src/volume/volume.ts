import type { Vec3 } from "./geometry.js";

/** One source slice behind a volume plane: what outputs reference. */
export interface SliceSource {
  sopInstanceUID: string;
  sopClassUID: string;
  /** ImagePositionPatient, mm (LPS). */
  position: Vec3;
  /** the frame, when the slice is one frame of an Enhanced multi-frame instance */
  frameNumber?: number;
}

/**
 * A regular grid in DICOM patient space (LPS) and the source slice of each plane. Voxel (i, j, k), i fastest, sits at
 * origin + i·spacing[0]·row + j·spacing[1]·column + k·spacing[2]·normal. k follows the slices in `slices`.
 */
export interface VolumeGrid {
  /** [columns, rows, slices] */
  dims: [number, number, number];
  /** mm: [along a row (between columns), along a column (between rows), between slices] */
  spacing: Vec3;
  origin: Vec3;
  /** [row direction, column direction, slice normal], unit vectors */
  direction: [Vec3, Vec3, Vec3];
  studyInstanceUID: string;
  seriesInstanceUID: string;
  frameOfReferenceUID: string;
  slices: SliceSource[];
}

/** A scalar volume: a grid and its voxels. */
export interface Volume extends VolumeGrid {
  /** rescaled values (HU for CT), index i + nx·(j + ny·k) */
  data: Float32Array;
}

/** Voxels of each label value (index = value) on the grid, in one pass. */
export function labelVoxelCounts(labels: LabelMap): Float64Array {
  const counts = new Float64Array(256);
  for (let i = 0; i < labels.data.length; i++) counts[labels.data[i]!]!++;
  return counts;
}

/** An integer label per voxel on a volume's grid (0 = background). */
export interface LabelMap {
  dims: [number, number, number];
  data: Uint8Array;
}
