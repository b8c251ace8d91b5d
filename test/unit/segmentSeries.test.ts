import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import { parsePart10 } from "../../src/dicom/dataset.js";
import { DelineateError } from "../../src/errors.js";
import { type SeriesInput, type SeriesStage, segmentSeries } from "../../src/jobs/segmentSeries.js";
import { ManifestSchema } from "../../src/models/manifest.js";
import type { LabelMap, Volume } from "../../src/volume/volume.js";
import { makeSeries } from "../helpers/series.js";
import { ROOT } from "../helpers/tools.js";

const manifest = ManifestSchema.parse(JSON.parse(readFileSync(path.join(ROOT, "models/ct-body/model.json"), "utf8")));
const settings = loadConfig(path.join(ROOT, "config/default.json"), {}).outputs;
let uid = 0;
const input = (instances: SeriesInput["instances"], infer: SeriesInput["infer"]): SeriesInput => ({
  instances,
  volume: { minSlices: 3, maxTiltDegrees: 0.05, spacingTolerance: 0.01, tilt: "correct", irregularSpacing: "resample" },
  infer,
  outputs: {
    manifest,
    kinds: ["seg"],
    uids: {},
    settings,
    softwareVersion: "0",
    deviceObserverUID: "2.25.1",
    newUid: () => `2.25.${++uid}`,
  },
});

// three 3×2 slices, each 0.5 mm further along the column than the last: a sheared (tilted) stack whose corrected grid
// is 3×4×3, source slice k sitting at rows k and k + 1 of plane k
const tilted = () => makeSeries([0, 1, 2].map((k) => ({ position: [0, 0.5 * k, 2 * k] as [number, number, number] })));

describe("segmentSeries: one series through volume, inference and outputs", () => {
  it("runs a tilted stack corrected and writes the labels on the source images, timing each stage", async () => {
    const stages: SeriesStage[] = [];
    let ready: { volume: Volume; warnings: readonly string[] } | undefined;
    let inferred: Volume | undefined;
    const result = await segmentSeries(
      input(tilted(), async (volume): Promise<LabelMap> => {
        inferred = volume;
        // on the corrected grid, row j of plane j only: on the source, row 0 of every slice
        const [mx, my, mz] = volume.dims;
        const data = new Uint8Array(mx * my * mz).map((_, n) =>
          Math.floor(n / mx) % my === Math.floor(n / (mx * my)) ? 1 : 0,
        );
        return { dims: volume.dims, data };
      }),
      {
        stage: async (stage, run) => {
          stages.push(stage);
          return run();
        },
        volumeReady: (volume, warnings) => (ready = { volume, warnings }),
      },
    );
    assert.deepEqual(stages, ["volume", "inference", "encode"]);
    assert.deepEqual(ready?.volume.dims, [3, 4, 3], "the model gets the corrected grid");
    assert.equal(inferred, ready?.volume);
    assert.match(ready!.warnings.join(), /gantry tilt of 14\.04° corrected/);
    assert.deepEqual(result.warnings, ready!.warnings);

    assert.deepEqual(
      result.files.map((f) => f.kind),
      ["seg"],
    );
    const seg = parsePart10(result.files[0]!.bytes).dataset as any;
    assert.equal(seg.Rows, 2, "the SEG is on the source grid (2 rows), not the corrected one (4)");
    assert.equal(seg.Columns, 3);
    assert.equal(seg.NumberOfFrames, 3);
    const bits = new Uint8Array(seg.PixelData[0]);
    const frames = seg.PerFrameFunctionalGroupsSequence as any[];
    for (const [f, frame] of frames.entries()) {
      const sop = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID as string;
      const k = Number(sop.split(".").at(-1)) - 1;
      assert.deepEqual(frame.PlanePositionSequence[0].ImagePositionPatient.map(Number), [0, 0.5 * k, 2 * k]);
      const pixels = Array.from({ length: 6 }, (_, p) => (bits[(f * 6 + p) >> 3]! >> ((f * 6 + p) & 7)) & 1);
      assert.deepEqual(pixels, [1, 1, 1, 0, 0, 0], `frame ${f + 1} (source slice ${k + 1}): row 0 labelled`);
    }
    // the organs told to the notifiers: the 9 voxels the SEG holds, each of the SEG's voxel size
    const measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0];
    const voxelMl =
      (measures.PixelSpacing.map(Number).reduce((a: number, b: number) => a * b) * Number(measures.SliceThickness)) /
      1000;
    assert.deepEqual(
      result.organs.map((o) => [o.label, o.volumeMl]),
      [[1, Math.round(9 * voxelMl * 100) / 100]],
    );
  });

  it("stops where the stage hook throws (a cancel), before inference runs", async () => {
    let inferred = false;
    const cancelled = new DelineateError("DLN_ERR_CANCELLED", "cancelled", {});
    await assert.rejects(
      segmentSeries(
        input(tilted(), async (volume) => {
          inferred = true;
          return { dims: volume.dims, data: new Uint8Array(volume.data.length) };
        }),
        {
          stage: async (stage, run) => {
            if (stage === "inference") throw cancelled;
            return run();
          },
        },
      ),
      (err) => err === cancelled,
    );
    assert.equal(inferred, false);
  });
});
