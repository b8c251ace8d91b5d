import { num, type ParsedDicom, str } from "../dicom/dataset.js";
import { DelineateError } from "../errors.js";

/** The largest Rows or Columns taken by default: 4096 (a 4K matrix; CT is 512, the largest MR 1024). */
export const DEFAULT_MAX_MATRIX_SIZE = 4096;
/** The most voxels a series may declare by default: 2^29, 2 GiB as float32 (512 × 512 × 2048 slices). */
export const DEFAULT_MAX_VOXELS = 2 ** 29;

/**
 * Checks a series' declared sizes (Rows, Columns, frames of each instance) against the limits before anything is
 * allocated or any frame expanded: a header declaring 65535 × 65535 must be a volume error naming the series, not a
 * RangeError from a typed array (or a process out of memory).
 * @throws DelineateError DLN_ERR_VOLUME_UNSUPPORTED naming the series and the size it declares
 */
export function checkDeclaredSize(
  input: readonly ParsedDicom[],
  limits: { maxMatrixSize?: number; maxVoxels?: number },
): void {
  const maxMatrix = limits.maxMatrixSize ?? DEFAULT_MAX_MATRIX_SIZE;
  const maxVoxels = limits.maxVoxels ?? DEFAULT_MAX_VOXELS;
  const series = input[0] ? str(input[0].dataset, "SeriesInstanceUID") : "";
  const refuse = (why: string) =>
    new DelineateError("DLN_ERR_VOLUME_UNSUPPORTED", `series ${series || "(unknown)"}: ${why}`, {
      seriesInstanceUID: series,
    });
  let voxels = 0;
  for (const inst of input) {
    const rows = num(inst.dataset, "Rows") ?? 0;
    const columns = num(inst.dataset, "Columns") ?? 0;
    const frames = num(inst.dataset, "NumberOfFrames") ?? 1;
    if (rows > maxMatrix || columns > maxMatrix)
      throw refuse(`declares a ${rows} × ${columns} matrix, over volume.maxMatrixSize (${maxMatrix})`);
    if (!Number.isSafeInteger(frames) || frames < 0) throw refuse(`declares ${frames} frames`);
    voxels += rows * columns * frames;
    if (voxels > maxVoxels) throw refuse(`declares more than ${maxVoxels} voxels (volume.maxVoxels) in all`);
  }
}
