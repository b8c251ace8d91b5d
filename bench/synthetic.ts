import { SCT } from "../src/dicom/codes.js";

/**
 * model.json of a benchmark network on CT: 1.5 mm, 128³ tiles at overlap 0.5 with Gaussian blending, no mirroring,
 * softmax, a SEG out; its labels `label value → name` with `color(value)`.
 */
export function benchManifestJson(
  id: string,
  name: string,
  sizeMultiple: number,
  labels: { value: number; name: string; color: [number, number, number] }[],
) {
  return {
    id,
    version: "0.0.1",
    name,
    modality: "CT",
    dimensions: 3,
    files: ["model.onnx"],
    input: { name: "image", layout: "NCZYX", spacing: [1.5, 1.5, 1.5], sizeMultiple, padding: "edge" },
    normalization: { kind: "ct-clip-zscore", clip: [-1000, 1000], mean: 0, std: 1000 },
    output: { name: "logits", activation: "softmax" },
    inference: { patchSize: [128, 128, 128], overlap: 0.5, blend: "gaussian", mirrorAxes: [] },
    labels: labels.map((l) => ({ ...l, category: SCT.Tissue, type: SCT.Tissue, rtInterpretedType: "ORGAN" })),
    outputs: ["seg"],
  };
}

/** A CT-like volume ([Z, Y, X], x fastest): an elliptical body whose voxels are `tissue(i, j, k)`, in air (-1000). */
export function ellipticalBody(
  [nx, ny, nz]: readonly [number, number, number],
  tissue: (i: number, j: number, k: number) => number,
): Float32Array {
  const data = new Float32Array(nx * ny * nz);
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        data[(k * ny + j) * nx + i] =
          ((i - nx / 2) / (nx / 2.6)) ** 2 + ((j - ny / 2) / (ny / 3.4)) ** 2 <= 1 ? tissue(i, j, k) : -1000;
      }
  return data;
}
