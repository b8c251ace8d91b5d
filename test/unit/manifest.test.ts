import assert from "node:assert/strict";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { it } from "node:test";
import { loadModelPackage } from "../../src/models/loadModel.js";
import { ROOT, tempDir } from "../helpers/tools.js";

it("loads the shipped manifest with inference defaults, and refuses a patch that is not a multiple of the network's size multiple", () => {
  const ct = loadModelPackage(path.join(ROOT, "models"), "ct-body");
  assert.deepEqual(ct.manifest.inference, {
    overlap: 0.5,
    blend: "gaussian",
    mirrorAxes: [],
    stretch: 0.1,
    accumulator: "float32",
    headSplit: true,
  });
  const dir = tempDir("manifest-");
  cpSync(path.join(ROOT, "models", "ct-body"), path.join(dir, "ct-body"), { recursive: true });
  const file = path.join(dir, "ct-body", "model.json");
  const m = JSON.parse(readFileSync(file, "utf8"));
  writeFileSync(file, JSON.stringify({ ...m, inference: { patchSize: [48, 48, 50], mirrorAxes: ["x", "w"] } }));
  assert.throws(
    () => loadModelPackage(dir, "ct-body"),
    (e: Error) => /invalid manifest/.test(e.message) && /inference\.mirrorAxes\.1/.test(e.message),
  );
  writeFileSync(file, JSON.stringify({ ...m, inference: { patchSize: [48, 48, 50] } }));
  assert.throws(
    () => loadModelPackage(dir, "ct-body"),
    /inference\.patchSize: every patch size must be a multiple of input\.sizeMultiple \(4\)/,
  );
  // orientation: three letters, one per patient axis
  for (const [orientation, why] of [
    ["LPX", /three letters from L\/R, P\/A, S\/I/],
    ["LRS", /one letter for each of the axes/],
  ] as const) {
    writeFileSync(file, JSON.stringify({ ...m, input: { ...m.input, orientation } }));
    assert.throws(
      () => loadModelPackage(dir, "ct-body"),
      (e: Error) => /input\.orientation/.test(e.message) && why.test(e.message),
      orientation,
    );
  }
  writeFileSync(file, JSON.stringify({ ...m, input: { ...m.input, orientation: "RAS" } }));
  assert.equal(loadModelPackage(dir, "ct-body").manifest.input.orientation, "RAS");
});

it("takes an External step naming one of the model's labels, with its defaults, and refuses one naming another or on MR", () => {
  const ct = loadModelPackage(path.join(ROOT, "models"), "ct-body");
  assert.deepEqual(ct.manifest.postprocessing.external, {
    label: 1,
    thresholdHu: -500,
    smoothMm: 1,
    openingMm: 5,
    minPieceMm2: 100,
    combine: "replace",
  });
  const dir = tempDir("manifest-");
  cpSync(path.join(ROOT, "models", "ct-body"), path.join(dir, "ct-body"), { recursive: true });
  const file = path.join(dir, "ct-body", "model.json");
  const m = JSON.parse(readFileSync(file, "utf8"));
  writeFileSync(file, JSON.stringify({ ...m, postprocessing: { external: { label: 2 } } }));
  assert.throws(() => loadModelPackage(dir, "ct-body"), /postprocessing\.external\.label: label 2 is not one of/);
  writeFileSync(file, JSON.stringify({ ...m, modality: "MR" }));
  assert.throws(
    () => loadModelPackage(dir, "ct-body"),
    /postprocessing\.external: the External step reads HU: CT only/,
  );
  writeFileSync(file, JSON.stringify({ ...m, postprocessing: { external: { label: 1, combine: "union" } } }));
  assert.throws(() => loadModelPackage(dir, "ct-body"), /postprocessing\.external\.combine/);
});
