import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nnunetManifest, UNCODED_SCHEME } from "../../src/cli/importNnunet.js";
import { DelineateError } from "../../src/errors.js";
import { ManifestSchema } from "../../src/models/manifest.js";

const info = {
  network: "PlainConvUNet",
  dimensions: 3 as const,
  patchSize: [16, 56, 64],
  spacing: [3.6, 3.3, 3.3],
  transposeForward: [0, 1, 2] as [number, number, number],
  transposeBackward: [0, 1, 2] as [number, number, number],
  normalization: "CTNormalization",
  useMaskForNorm: false,
  intensityProperties: { mean: -23.4, std: 110.5, percentile_00_5: -349, percentile_99_5: 490 },
  resamplingData: { order: 3, order_z: 0, force_separate_z: null },
  resamplingProbabilities: { order: 1, order_z: 0, force_separate_z: null },
  mirrorAxes: [0, 1, 2],
  labels: { background: 0, soft_tissue: 1, bone: 2 },
  channels: { "0": "CT" },
  files: ["fold_0.onnx"],
  trainer: "nnUNetTrainer",
  plansName: "nnUNetPlans",
  datasetName: "Dataset901_CTPlain",
};

describe("nnU-Net import manifest", () => {
  it("takes labels from dataset.json with placeholder codes, and the runtime settings into the nnunet block", () => {
    const { manifest, warnings } = nnunetManifest(info, { id: "ct-plain", configuration: "3d_fullres", folder: "/m" });
    assert.equal(manifest.preprocessing, "nnunet");
    assert.equal(manifest.modality, "CT");
    assert.deepEqual(
      manifest.labels.map((l) => [l.value, l.name, l.type.scheme]),
      [
        [1, "soft_tissue", UNCODED_SCHEME],
        [2, "bone", UNCODED_SCHEME],
      ],
    );
    assert.equal(manifest.nnunet?.classes, 3);
    assert.equal(manifest.nnunet?.normalization.percentile_99_5, 490);
    assert.equal(manifest.nnunet?.accumulate, "float16");
    assert.deepEqual(manifest.input.spacing, [3.3, 3.3, 3.6]); // x, y, z
    assert.ok(warnings.some((w) => /SNOMED CT/.test(w)));
    assert.ok(warnings.some((w) => /WebGPU/.test(w)));
  });

  it("refuses label values that are not 0, 1, 2, ...", () => {
    assert.throws(
      () =>
        nnunetManifest(
          { ...info, labels: { background: 0, liver: 1, tumour: 3 } },
          { id: "x", configuration: "3d_fullres", folder: "/m" },
        ),
      (e: unknown) => e instanceof DelineateError && e.code === "DLN_ERR_MODEL_INVALID",
    );
  });

  it("a manifest with preprocessing nnunet needs its nnunet block, and the block needs the mode", () => {
    const { manifest } = nnunetManifest(info, { id: "ct-plain", configuration: "3d_fullres", folder: "/m" });
    const { nnunet, ...without } = manifest;
    assert.ok(nnunet);
    assert.equal(ManifestSchema.safeParse(without).success, false);
    assert.equal(ManifestSchema.safeParse({ ...manifest, preprocessing: "delineate" }).success, false);
    assert.equal(ManifestSchema.safeParse(manifest).success, true);
  });
});
