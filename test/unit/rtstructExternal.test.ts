import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import type { NaturalDataset } from "../../src/dicom/dataset.js";
import { ManifestSchema, type ModelLabel } from "../../src/models/manifest.js";
import { rtstructExternalIncludes } from "../../src/outputs/encodeOutputs.js";
import { buildStructureSet } from "../../src/outputs/structureSet.js";
import { seriesToVolume } from "../../src/volume/seriesToVolume.js";
import { makeSeries } from "../helpers/series.js";
import { ROOT } from "../helpers/tools.js";

const code = { code: "123037004", scheme: "SCT", meaning: "Anatomical Structure" };
const label = (value: number, name: string, rtInterpretedType: ModelLabel["rtInterpretedType"]): ModelLabel => ({
  value,
  name,
  color: [0, 200, 0],
  category: code,
  type: code,
  rtInterpretedType,
});
const LABELS = [label(1, "Parotid_R", "ORGAN"), label(2, "External", "EXTERNAL"), label(3, "Mandible", "ORGAN")];

// 12 × 12 pixels, 0.75 mm between columns (x) and 0.5 mm between rows (y), three slices 3 mm apart at x = y = 0
const [N, SX, SY] = [12, 0.75, 0.5];
const series = makeSeries(
  [0, 1, 2].map((k) => ({ position: [0, 0, 3 * k] as [number, number, number], pixels: new Array(N * N).fill(0) })),
  { rows: N, cols: N },
);
const volume = seriesToVolume(series);
const labels = new Uint8Array(N * N * 3);
const box = (k: number, i0: number, i1: number, j0: number, j1: number, v: number) => {
  for (let j = j0; j <= j1; j++) for (let i = i0; i <= i1; i++) labels[k * N * N + j * N + i] = v;
};
// slice 0: a body of 10 × 10 pixels, an organ inside it (a hole in the External label) and one on its edge
box(0, 1, 10, 1, 10, 2);
box(0, 4, 6, 4, 6, 1);
box(0, 9, 10, 1, 2, 3);
// slice 1: an organ alone, no External voxel
box(1, 3, 4, 3, 4, 1);

function structureSet(externalIncludes?: number[]): NaturalDataset {
  return buildStructureSet({
    volume,
    source: series[0]!.dataset,
    labels: { dims: volume.dims, data: labels },
    segmentLabels: LABELS,
    algorithm: { name: "test", version: "1.0.0" },
    uids: { seriesInstanceUID: "1.2.3.4", sopInstanceUID: "1.2.3.5" },
    series: { number: 1, description: "t" },
    equipment: { manufacturer: "Delineate", modelName: "Delineate", deviceSerialNumber: "t", softwareVersion: "0" },
    disclaimer: "",
    now: new Date(0),
    ...(externalIncludes ? { externalIncludes } : {}),
  });
}

/** The External ROI's contours, each as its slice's z and its (x, y) points in mm. */
function externalContours(rt: NaturalDataset): { z: number; points: [number, number][] }[] {
  const rois = rt.StructureSetROISequence as NaturalDataset[];
  const number = rois.find((r) => r.ROIName === "External")!.ROINumber;
  const contours = (rt.ROIContourSequence as NaturalDataset[]).find((c) => c.ReferencedROINumber === number)!
    .ContourSequence as NaturalDataset[];
  return contours.map((c) => {
    const d = (c.ContourData as string[]).map(Number);
    const points: [number, number][] = [];
    for (let p = 0; p < d.length; p += 3) points.push([d[p]!, d[p + 1]!]);
    return { z: d[2]!, points };
  });
}

/** Pixel centres (i·SX, j·SY) inside the contours of one slice (even-odd over all of them), as a 0/1 mask. */
function rasterise(rings: [number, number][][]): Uint8Array {
  const out = new Uint8Array(N * N);
  for (let j = 0; j < N; j++)
    for (let i = 0; i < N; i++) {
      const [x, y] = [i * SX, j * SY];
      let inside = false;
      for (const r of rings)
        for (let a = 0, b = r.length - 1; a < r.length; b = a++) {
          const [xa, ya] = r[a]!,
            [xb, yb] = r[b]!;
          if (ya > y !== yb > y && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) inside = !inside;
        }
      out[j * N + i] = inside ? 1 : 0;
    }
  return out;
}

const sliceMask = (k: number, keep: (v: number) => boolean) =>
  Uint8Array.from(labels.subarray(k * N * N, (k + 1) * N * N), (v) => (keep(v) ? 1 : 0));

describe("RTSTRUCT External containing the organs (manifest rtstruct.externalIncludes)", () => {
  it("with the organs included, the External is the 10 × 10 body as one four-corner contour, and covers an organ on a slice without External voxels", () => {
    const ext = externalContours(structureSet([1, 3]));
    assert.deepEqual(
      ext.map((c) => c.z),
      [0, 3],
    );
    const [first, second] = ext;
    // the body's pixel edges: columns 1..10 → x from 0.5 to 10.5 pixels, rows 1..10 → y likewise
    const corners = first!.points.map(([x, y]) => `${x / SX},${y / SY}`).sort();
    assert.deepEqual(corners, ["0.5,0.5", "0.5,10.5", "10.5,0.5", "10.5,10.5"]);
    assert.deepEqual(
      rasterise([first!.points]),
      sliceMask(0, (v) => v > 0),
    );
    assert.deepEqual(
      rasterise([second!.points]),
      sliceMask(1, (v) => v === 1),
    );
  });

  it("without, the External keeps the label map's hole at the organ inside it (as before)", () => {
    const ext = externalContours(structureSet());
    assert.equal(ext.length, 1, "no External voxel on slice 1");
    assert.deepEqual(
      rasterise([ext[0]!.points]),
      sliceMask(0, (v) => v === 2),
    );
    assert.notDeepEqual(
      rasterise([ext[0]!.points]),
      sliceMask(0, (v) => v > 0),
    );
  });

  it("the organ ROIs are the same either way", () => {
    const organs = (rt: NaturalDataset) =>
      (rt.ROIContourSequence as NaturalDataset[])
        .filter((_, n) => (rt.StructureSetROISequence as NaturalDataset[])[n]!.ROIName !== "External")
        .map((c) => c.ContourSequence);
    assert.deepEqual(organs(structureSet([1, 3])), organs(structureSet()));
  });

  it('the manifest setting: "all" is every non-EXTERNAL label, a list those of it, "none" nothing; refused without exactly one EXTERNAL label or with an unknown value', () => {
    const m = JSON.parse(readFileSync(path.join(ROOT, "models", "hn-oar", "model.json"), "utf8"));
    const parsed = (rtstruct: unknown, labels = m.labels) => ManifestSchema.safeParse({ ...m, labels, rtstruct });
    const includes = (rtstruct: unknown) => rtstructExternalIncludes(parsed(rtstruct).data!);
    assert.deepEqual(includes({ externalIncludes: "all" }), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(includes({ externalIncludes: [3, 4] }), [3, 4]);
    assert.deepEqual(includes({ externalIncludes: "none" }), []);
    assert.deepEqual(includes(undefined), [], "absent: none");
    const noExternal = m.labels.map((l: ModelLabel) => ({ ...l, rtInterpretedType: "ORGAN" }));
    assert.match(
      JSON.stringify(parsed({ externalIncludes: "all" }, noExternal).error?.issues),
      /exactly one label with rtInterpretedType EXTERNAL \(the model has 0\)/,
    );
    assert.match(JSON.stringify(parsed({ externalIncludes: [3, 42] }).error?.issues), /label 42 is not one of/);
  });
});
