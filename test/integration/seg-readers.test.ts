import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { writePart10 } from "../../src/dicom/dataset.js";
import type { ModelLabel } from "../../src/models/manifest.js";
import { buildSegmentation } from "../../src/outputs/segmentation.js";
import { newUid } from "../../src/outputs/uid.js";
import { seriesToVolume } from "../../src/volume/seriesToVolume.js";
import { makeSeries } from "../helpers/series.js";
import { dciodvfy, python } from "../helpers/tools.js";

const label = (value: number, name: string): ModelLabel => ({
  value,
  name,
  color: [value * 60, 100, 200],
  category: { code: "123037004", scheme: "SCT", meaning: "Anatomical Structure" },
  type: { code: ["10200004", "39607008", "64033007"][value - 1]!, scheme: "SCT", meaning: ["Liver", "Lung", "Kidney"][value - 1]! },
  rtInterpretedType: "ORGAN",
});

describe("SEG read back by independent tools", () => {
  it("odd Rows×Columns, three segments with gaps: dciodvfy passes and pydicom unpacks our label map exactly", async () => {
    const [cols, rows, nz] = [13, 7, 6];
    const series = makeSeries(
      Array.from({ length: nz }, (_, k) => ({ position: [-3, 4, k * 2.5] as [number, number, number], pixels: Array.from({ length: rows * cols }, () => 40) })),
      { rows, cols },
    );
    const volume = seriesToVolume(series);
    const labels = new Uint8Array(cols * rows * nz);
    for (let i = 0; i < labels.length; i++) {
      const k = Math.floor(i / (cols * rows));
      // segment 1 on slices 1-4 with slice 2 empty inside its extent; segment 3 on slice 5 only; segment 2 (label 2) absent
      if (k >= 1 && k <= 4 && k !== 2 && i % 3 === 0) labels[i] = 1;
      if (k === 5 && i % 5 === 1) labels[i] = 3;
    }
    const seg = buildSegmentation({
      volume,
      source: series[0]!.dataset,
      labels: { dims: volume.dims, data: labels },
      segmentLabels: [label(1, "Liver"), label(2, "Lung"), label(3, "Kidney")],
      algorithm: { name: "test-model", version: "1.2.3" },
      uids: { seriesInstanceUID: newUid("2.25"), sopInstanceUID: newUid("2.25"), dimensionOrganizationUID: newUid("2.25") },
      series: { number: 42, description: "test" },
      equipment: { manufacturer: "Delineate", modelName: "Delineate", deviceSerialNumber: "t", softwareVersion: "0" },
      disclaimer: "NOT FOR CLINICAL USE",
      now: new Date(),
    });
    assert.deepEqual([...seg.segmentNumbers], [[1, 1], [3, 2]], "absent labels get no segment; numbering stays consecutive");
    assert.equal(seg.frameCount, 4 + 1, "segment 1 keeps its empty slice inside the extent");

    const dir = mkdtempSync(path.join(tmpdir(), "delineate-seg-"));
    const file = path.join(dir, "seg.dcm");
    writeFileSync(file, writePart10(seg.dataset));
    const verdict = await dciodvfy(file);
    assert.deepEqual(verdict.errors, [], verdict.errors.join("\n"));

    const read = await python(
      `
import json, sys, pydicom
d = pydicom.dcmread(sys.argv[1])
px = d.pixel_array.reshape(int(d.NumberOfFrames), d.Rows, d.Columns)
open(sys.argv[2], "wb").write(px.astype("uint8").tobytes())
print(json.dumps({"frames": [[int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber), f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID] for f in d.PerFrameFunctionalGroupsSequence],
  "bits": [d.BitsAllocated, d.BitsStored], "length": len(d.PixelData)}))`,
      [file, path.join(dir, "frames.raw")],
    );
    assert.equal(read.length, Math.ceil((cols * rows * 5) / 8) + (Math.ceil((cols * rows * 5) / 8) % 2));
    const raw = new Uint8Array(readFileSync(path.join(dir, "frames.raw")));
    const plane = cols * rows;
    const valueOf = new Map([[1, 1], [2, 3]]);
    const sliceOf = new Map(volume.slices.map((s, k) => [s.sopInstanceUID, k]));
    read.frames.forEach(([segment, sop]: [number, string], f: number) => {
      const k = sliceOf.get(sop)!;
      const want = labels.subarray(k * plane, (k + 1) * plane).map((l) => (l === valueOf.get(segment) ? 1 : 0));
      assert.deepEqual(raw.subarray(f * plane, (f + 1) * plane), want, `frame ${f + 1}: segment ${segment} on slice ${k}`);
    });
  });
});
