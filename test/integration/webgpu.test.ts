import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { it } from "node:test";
import { bodyModelRunningItsNetwork } from "../../harness/bodyModel.js";
import { parsePart10 } from "../../src/dicom/dataset.js";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { InferenceWorker } from "../../src/inference/inferenceWorker.js";
import { type InferenceVolume, modelGridProbabilities } from "../../src/inference/segmentVolume.js";
import { createSession } from "../../src/inference/session.js";
import { createLogger } from "../../src/log.js";
import { loadModelPackage } from "../../src/models/loadModel.js";
import { seriesToVolume } from "../../src/volume/seriesToVolume.js";
import { ROOT, tempDir } from "../helpers/tools.js";

// The GPU code path without a GPU: onnxruntime-node's WebGPU provider (Dawn) on lavapipe, Mesa's software Vulkan
// device (mesa-vulkan-drivers ≥ 23; scripts/setup.sh installs 25.0 from bookworm-backports, as 22.3's lavapipe lacks
// shaderUniformBufferArrayDynamicIndexing, which Dawn requires). Small volumes: lavapipe compiles every shader on
// the CPU. Tolerance: probabilities within 1e-3 of the CPU provider's in 3D (seen: 3.8e-4; instance normalisation
// and 3D convolutions in float32 shaders sum in another order), 1e-4 in 2D; labels equal.
const log = createLogger({ level: "error", silent: true });

function phantom(size: number, slices: number, pixelSpacing: number, sliceSpacing: number) {
  const dir = tempDir("webgpu-");
  writePhantomSeries(dir, { size, slices, pixelSpacing, sliceSpacing, patientName: "G^G", patientID: "G" });
  return seriesToVolume(readdirSync(dir).map((f) => parsePart10(new Uint8Array(readFileSync(path.join(dir, f))))));
}

async function bothProviders(id: string, file: number, volume: InferenceVolume) {
  const model = loadModelPackage(path.join(ROOT, "models"), id);
  const dimensions = model.manifest.dimensions;
  const out: Record<string, Float32Array[]> = {};
  for (const provider of ["cpu", "webgpu"] as const) {
    const s = await createSession(
      model.onnxPaths[file]!,
      { executionProviders: [provider], intraOpThreads: 0, dimensions },
      log,
    );
    assert.equal(s.provider, provider);
    const manifest = { ...model.manifest, files: [model.manifest.files[file]!] };
    out[provider] = (await modelGridProbabilities(volume, manifest, [s.session])).probs;
    await s.session.release();
  }
  let worst = 0;
  for (let c = 0; c < out.cpu!.length; c++)
    for (let v = 0; v < out.cpu![c]!.length; v++)
      worst = Math.max(worst, Math.abs(out.cpu![c]![v]! - out.webgpu![c]![v]!));
  return worst;
}

it("WebGPU on lavapipe runs the 3D model (ct-body): probabilities equal the CPU provider's within 1e-3", async () => {
  const worst = await bothProviders("ct-body", 0, phantom(96, 24, 4, 4));
  assert.ok(worst <= 1e-3, `largest probability difference ${worst}`);
});

it("WebGPU on lavapipe runs the 2D model (isbi-em, one fold): probabilities equal the CPU provider's within 1e-4", async () => {
  // an EM-like section at the model's own spacing (2D models are not resampled along z)
  const [nx, ny, nz] = [64, 64, 2];
  const data = new Float32Array(nx * ny * nz).map((_, i) => 128 + 60 * Math.sin(i * 0.21) * Math.cos(i * 0.0131));
  const worst = await bothProviders("isbi-em", 0, {
    dims: [nx, ny, nz],
    spacing: [4e-6, 4e-6, 5e-5],
    direction: [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ],
    data,
    seriesInstanceUID: "2.25.1",
  });
  assert.ok(worst <= 1e-4, `largest probability difference ${worst}`);
});

it("an inference worker configured webgpu-first loads on WebGPU, the provider a job records, with the CPU's labels", async () => {
  const model = bodyModelRunningItsNetwork();
  const volume = phantom(96, 24, 4, 4);
  const labels: Record<string, Uint8Array> = {};
  for (const providers of [["webgpu", "cpu"], ["cpu"]] as const) {
    const worker = await InferenceWorker.start(model, { executionProviders: providers, intraOpThreads: 0 }, log);
    try {
      assert.equal(worker.provider, providers[0]);
      labels[providers[0]] = (await worker.segment(volume)).data;
    } finally {
      await worker.close();
    }
  }
  assert.ok(Buffer.from(labels.webgpu!).equals(Buffer.from(labels.cpu!)), "labels equal the CPU provider's");
});
