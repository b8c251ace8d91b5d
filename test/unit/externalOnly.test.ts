import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, it } from "node:test";
import ort from "onnxruntime-node";
import { patientCt } from "../../harness/syntheticCt.js";
import { externalOnly, networkLabels, postprocess, segmentVolume } from "../../src/inference/segmentVolume.js";
import { ManifestSchema } from "../../src/models/manifest.js";
import { ROOT } from "../helpers/tools.js";

// ct-body: one label, Body, which the classical External step replaces
const dir = path.join(ROOT, "models/ct-body");
const manifest = ManifestSchema.parse(JSON.parse(readFileSync(path.join(dir, "model.json"), "utf8")));
let session: ort.InferenceSession;
before(async () => {
  session = await ort.InferenceSession.create(path.join(dir, "model.onnx"), { executionProviders: ["cpu"] });
});
after(async () => session?.release());

it("a model whose only label the classical outline replaces gets the same labels without running its network", async () => {
  assert.ok(externalOnly(manifest), "ct-body is such a model");
  const dims: [number, number, number] = [120, 96, 20];
  const volume = {
    dims,
    spacing: [1.5, 1.5, 3] as [number, number, number],
    direction: [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ] as [[number, number, number], [number, number, number], [number, number, number]],
    data: patientCt(dims, 7),
    seriesInstanceUID: "1.2.3",
  };
  // the long way: the network's labels, then the same post-processing
  const network = await networkLabels(volume, manifest, [session]);
  const bodyByNetwork = network.data.reduce((n, v) => n + v, 0);
  assert.ok(bodyByNetwork > 0.1 * network.data.length, "the network did outline a body, which the step then replaces");
  postprocess(network, manifest.postprocessing, [1], volume.spacing, volume.data);
  // the short way, with no session at all: a network call would throw
  const skipped = await segmentVolume(volume, manifest, []);
  assert.deepEqual(skipped.dims, network.dims);
  assert.ok(Buffer.from(skipped.data.buffer).equals(Buffer.from(network.data.buffer)), "identical voxel for voxel");
});

it("a model with organs beside its External, or an External only intersected with the network's, still runs it", () => {
  const organ = { ...manifest.labels[0]!, value: 2, name: "Organ", rtInterpretedType: "ORGAN" as const };
  assert.equal(externalOnly({ ...manifest, labels: [...manifest.labels, organ] }), false);
  const intersect = { ...manifest.postprocessing.external!, combine: "intersect" as const };
  assert.equal(
    externalOnly({ ...manifest, postprocessing: { ...manifest.postprocessing, external: intersect } }),
    false,
  );
  assert.equal(
    externalOnly({ ...manifest, postprocessing: { ...manifest.postprocessing, external: undefined } }),
    false,
  );
});
