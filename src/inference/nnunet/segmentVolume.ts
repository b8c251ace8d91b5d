/**
 * An imported nnU-Net model on a DICOM volume (the node's and `delineate segment FOLDER`'s path). The volume's voxels,
 * i (column) fastest, then j (row), then k (slice), are as a C-order array [k, j, i] what nnU-Net gets from a NIfTI
 * written in the series' own voxel order (SimpleITK's DICOM reading, `delineate convert`): that array and its
 * spacing [sk, sj, si] go to the predictor, and its labels come back in the same order, i.e. on the volume's grid.
 */

import type ort from "onnxruntime-node";
import { DelineateError } from "../../errors.js";
import type { ModelManifest } from "../../models/manifest.js";
import type { LabelMap } from "../../volume/volume.js";
import type { InferenceVolume } from "../segmentVolume.js";
import { onnxTileNetwork, predictNnunet } from "./predict.js";

export async function segmentVolumeNnunet(
  volume: InferenceVolume,
  manifest: ModelManifest,
  sessions: readonly ort.InferenceSession[],
): Promise<LabelMap> {
  const config = manifest.nnunet;
  if (!config) throw new DelineateError("DLN_ERR_MODEL_INVALID", `model ${manifest.id} has no nnunet block`);
  const [nx, ny, nz] = volume.dims;
  const [sx, sy, sz] = volume.spacing;
  const is2d = config.patchSize.length === 2;
  const result = await predictNnunet(
    volume.data,
    [nz, ny, nx],
    [sz, sy, sx],
    config,
    sessions.map((s) => onnxTileNetwork(s, is2d, manifest.input.name, manifest.output.name)),
  );
  return { dims: [nx, ny, nz], data: result.labels };
}
