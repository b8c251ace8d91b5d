import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { it } from "node:test";
import { parsePart10 } from "../../src/dicom/dataset.js";
import { InferenceWorker } from "../../src/inference/inferenceWorker.js";
import { segmentVolume } from "../../src/inference/segmentVolume.js";
import { createSession } from "../../src/inference/session.js";
import { createLogger } from "../../src/log.js";
import { loadModelPackage } from "../../src/models/loadModel.js";
import { writePhantomSeries } from "../../src/volume/phantom.js";
import { seriesToVolume } from "../../src/volume/seriesToVolume.js";
import { ROOT } from "../helpers/tools.js";

it("runs the model on a worker thread: same labels as in-process, the volume handed back intact, the event loop free", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "delineate-worker-"));
  writePhantomSeries(dir, { size: 256, slices: 100, pixelSpacing: 1.5, sliceSpacing: 3, patientName: "W^W", patientID: "W" });
  const volume = seriesToVolume(readdirSync(dir).map((f) => parsePart10(new Uint8Array(readFileSync(path.join(dir, f))))));
  const before = volume.data.slice();
  const model = loadModelPackage(path.join(ROOT, "models"), "ct-body");
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

    const { session } = await createSession(model.onnxPaths[0]!, { executionProviders: ["cpu"], intraOpThreads: 0 }, log);
    const direct = await segmentVolume(volume, model.manifest, session);
    await session.release();
    assert.deepEqual(labels.dims, direct.dims);
    assert.ok(Buffer.from(labels.data).equals(Buffer.from(direct.data)), "labels equal the in-process result");
    assert.ok(labels.data.some((v) => v === 1), "the phantom's body is found");
  } finally {
    await worker.close();
  }
});
