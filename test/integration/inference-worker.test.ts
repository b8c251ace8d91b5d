import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { it } from "node:test";
import { bodyModelRunningItsNetwork } from "../../harness/bodyModel.js";
import { parsePart10 } from "../../src/dicom/dataset.js";
import { DelineateError } from "../../src/errors.js";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { InferenceWorker } from "../../src/inference/inferenceWorker.js";
import { segmentVolume } from "../../src/inference/segmentVolume.js";
import { createSession } from "../../src/inference/session.js";
import { createLogger } from "../../src/log.js";
import { loadModelPackage } from "../../src/models/loadModel.js";
import { seriesToVolume } from "../../src/volume/seriesToVolume.js";
import type { Volume } from "../../src/volume/volume.js";
import { ROOT, tempDir } from "../helpers/tools.js";

/** A phantom CT of `size`² × `slices`, written as DICOM to a temporary folder and read back as a volume. */
function phantomVolume(size: number, slices: number, pixelSpacing: number, sliceSpacing: number): Volume {
  const dir = tempDir("worker-");
  writePhantomSeries(dir, { size, slices, pixelSpacing, sliceSpacing, patientName: "W^W", patientID: "W" });
  return seriesToVolume(readdirSync(dir).map((f) => parsePart10(new Uint8Array(readFileSync(path.join(dir, f))))));
}

it("runs the model on a worker thread: same labels as in-process, the volume handed back intact, the event loop free", async () => {
  const volume = phantomVolume(256, 100, 1.5, 3);
  const before = volume.data.slice();
  const model = bodyModelRunningItsNetwork();
  const log = createLogger({ level: "error", silent: true });

  const worker = await InferenceWorker.start(model, { executionProviders: ["cpu"], intraOpThreads: 0 }, log);
  try {
    assert.equal(worker.provider, "cpu");
    let ticks = 0;
    let done = false;
    const counting = (async () => {
      while (!done) {
        await new Promise((r) => setTimeout(r, 0));
        ticks++;
      }
    })();
    const labels = await worker.segment(volume);
    done = true;
    await counting;
    assert.ok(ticks >= 10, `the main event loop turned ${ticks} times while the worker ran the model`);
    assert.deepEqual(volume.data, before, "the volume's values came back unchanged");

    const { session } = await createSession(
      model.onnxPaths[0]!,
      { executionProviders: ["cpu"], intraOpThreads: 0 },
      log,
    );
    const direct = await segmentVolume(volume, model.manifest, [session]);
    await session.release();
    assert.deepEqual(labels.dims, direct.dims);
    assert.ok(Buffer.from(labels.data).equals(Buffer.from(direct.data)), "labels equal the in-process result");
    assert.ok(
      labels.data.some((v) => v === 1),
      "the phantom's body is found",
    );
  } finally {
    await worker.close();
  }
});

it("manifest inference settings: tiles with Gaussian blending and mirroring agree with one pass; two identical folds change nothing", {
  timeout: 300_000,
}, async () => {
  const volume = phantomVolume(160, 60, 2.4, 3);
  const model = loadModelPackage(path.join(ROOT, "models"), "ct-body");
  const { session } = await createSession(
    model.onnxPaths[0]!,
    { executionProviders: ["cpu"], intraOpThreads: 0 },
    createLogger({ level: "error", silent: true }),
  );
  try {
    // the network's own labels: the External step (from the HU alone) would make every variant below the same
    const { external: _, ...networkOnly } = model.manifest.postprocessing;
    const manifest = { ...model.manifest, postprocessing: { ...networkOnly, keepLargestComponent: true } };
    const whole = await segmentVolume(volume, manifest, [session]);
    const dice = (a: Uint8Array, b: Uint8Array) => {
      let both = 0,
        na = 0,
        nb = 0;
      for (let i = 0; i < a.length; i++) {
        both += a[i] && b[i] ? 1 : 0;
        na += a[i] ? 1 : 0;
        nb += b[i] ? 1 : 0;
      }
      return (2 * both) / (na + nb);
    };
    // the model grid is 96×96×45 here: 48³ tiles at overlap 0.5 make 3×3×1 tiles
    const tiled = await segmentVolume(
      volume,
      { ...manifest, inference: { ...manifest.inference, patchSize: [48, 48, 48] } },
      [session],
    );
    const mirrored = await segmentVolume(
      volume,
      { ...manifest, inference: { ...manifest.inference, mirrorAxes: ["x", "y"] } },
      [session],
    );
    const folds = await segmentVolume(volume, manifest, [session, session]);
    const [dt, dm] = [dice(whole.data, tiled.data), dice(whole.data, mirrored.data)];
    console.log(
      `# ct-body on a phantom: tiled vs one pass Dice ${dt.toFixed(4)}, mirrored (x, y) vs one pass ${dm.toFixed(4)}`,
    );
    // ct-body was trained on whole volumes, so tiles (less context at their borders) differ a little; the exact
    // blending arithmetic is checked in test/unit/slidingWindow.test.ts. 0.9685 measured when this was written.
    assert.ok(dt > 0.95, `tiled: Dice ${dt}`);
    assert.ok(dm > 0.97, `mirrored: Dice ${dm}`);
    assert.ok(
      Buffer.from(folds.data).equals(Buffer.from(whole.data)),
      "two identical folds: logits x/2 + x/2 = x, the same labels exactly",
    );
  } finally {
    await session.release();
  }
});

it("a failure on the worker thread arrives as the DelineateError it was: code, message, context and the cause's message", async () => {
  const volume = phantomVolume(64, 20, 6, 6);
  const before = volume.data.slice();
  const model = bodyModelRunningItsNetwork();
  // an input name the network does not have: onnxruntime refuses the run inside the worker
  const wrong = { ...model, manifest: { ...model.manifest, input: { ...model.manifest.input, name: "not-an-input" } } };
  const worker = await InferenceWorker.start(
    wrong,
    { executionProviders: ["cpu"], intraOpThreads: 0 },
    createLogger({ level: "error", silent: true }),
  );
  try {
    const err = await worker.segment(volume).then(
      () => assert.fail("the run should fail"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof DelineateError, String(err));
    assert.equal(err.code, "DLN_ERR_INFERENCE");
    assert.match(
      err.message,
      new RegExp(`^model ct-body on series ${volume.seriesInstanceUID.replace(/\./g, "\\.")}: `),
    );
    assert.equal(err.context.seriesInstanceUID, volume.seriesInstanceUID);
    assert.ok(err.cause instanceof Error, "the cause crosses the thread");
    assert.match(err.cause.message, /input 'image' is missing in 'feeds'/, "onnxruntime's own words");
    assert.ok(err.message.endsWith(err.cause.message), "the message carries onnxruntime's complaint");
    assert.deepEqual(volume.data, before, "the volume comes home after a failure too");
  } finally {
    await worker.close();
  }
});
