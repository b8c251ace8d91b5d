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

/**
 * Voxels of each label value (index = value) on the grid, in one pass: four voxels at a time where they hold one
 * value (background, or the inside of an organ: most of a label map), voxel by voxel elsewhere.
 */
export function labelVoxelCounts(labels: LabelMap): Float64Array {
  const counts = new Float64Array(256);
  const data = labels.data;
  const head = Math.min(data.length, (4 - (data.byteOffset % 4)) % 4);
  const n = (data.length - head) >> 2;
  const words = n > 0 ? new Uint32Array(data.buffer, data.byteOffset + head, n) : new Uint32Array(0);
  for (let i = 0; i < head; i++) counts[data[i]!]!++;
  for (let w = 0; w < n; w++) {
    const word = words[w]!;
    const v = word & 0xff;
    if (word === Math.imul(v, 0x01010101) >>> 0) counts[v]! += 4;
    else {
      counts[v]!++;
      counts[(word >>> 8) & 0xff]!++;
      counts[(word >>> 16) & 0xff]!++;
      counts[word >>> 24]!++;
    }
  }
  for (let i = head + 4 * n; i < data.length; i++) counts[data[i]!]!++;
  return counts;
}

/** An integer label per voxel on a volume's grid (0 = background). */
export interface LabelMap {
  dims: [number, number, number];
  data: Uint8Array;
}
