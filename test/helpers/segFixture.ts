import type { ParsedDicom } from "../../src/dicom/dataset.js";
import { buildSegmentation, type Segmentation, type SegmentationInput } from "../../src/outputs/segmentation.js";
import { newUid } from "../../src/outputs/uid.js";
import { seriesToVolume } from "../../src/volume/seriesToVolume.js";
import type { Volume } from "../../src/volume/volume.js";
import { makeSeries } from "./series.js";

/**
 * A series in memory of `dims` = [columns, rows, slices], every pixel 40, slice k at (`x`, `y`, k × `step`), each
 * dataset with `extra` too; and its volume.
 */
export function uniformSeries(
  [cols, rows, nz]: [number, number, number],
  [x, y]: [number, number],
  step: number,
  extra?: Record<string, unknown>,
): { series: ParsedDicom[]; volume: Volume } {
  const series = makeSeries(
    Array.from({ length: nz }, (_, k) => ({
      position: [x, y, k * step] as [number, number, number],
      pixels: Array.from({ length: rows * cols }, () => 40),
      ...(extra ? { extra } : {}),
    })),
    { rows, cols },
  );
  return { series, volume: seriesToVolume(series) };
}

/**
 * A 13×7×6 series in memory (odd Rows×Columns) with a label map that has gaps: label 1 on slices 1-4 with slice 2
 * empty inside its extent, label 3 on slice 5 only, label 2 absent. What the SEG writer and readers are tested on.
 */
export function gappedLabelSeries(): { series: ParsedDicom[]; volume: Volume; labels: Uint8Array } {
  const [cols, rows, nz] = [13, 7, 6];
  const { series, volume } = uniformSeries([cols, rows, nz], [-3, 4], 2.5);
  const labels = new Uint8Array(cols * rows * nz);
  for (let i = 0; i < labels.length; i++) {
    const k = Math.floor(i / (cols * rows));
    if (k >= 1 && k <= 4 && k !== 2 && i % 3 === 0) labels[i] = 1;
    if (k === 5 && i % 5 === 1) labels[i] = 3;
  }
  return { series, volume, labels };
}

/** buildSegmentation with new UIDs and the series, equipment and disclaimer a test does not look at (each overridable). */
export function testSegmentation(
  input: Pick<SegmentationInput, "volume" | "source" | "labels" | "segmentLabels"> & Partial<SegmentationInput>,
): Segmentation {
  return buildSegmentation({
    algorithm: { name: "test-model", version: "1.2.3" },
    uids: {
      seriesInstanceUID: newUid("2.25"),
      sopInstanceUID: newUid("2.25"),
      dimensionOrganizationUID: newUid("2.25"),
    },
    series: { number: 42, description: "test" },
    equipment: { manufacturer: "Delineate", modelName: "Delineate", deviceSerialNumber: "t", softwareVersion: "0" },
    disclaimer: "NOT FOR CLINICAL USE",
    now: new Date(),
    ...input,
  });
}
