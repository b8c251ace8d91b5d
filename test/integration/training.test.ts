import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { it } from "node:test";
import ort from "onnxruntime-node";
import { exec, ROOT, tempDir } from "../helpers/tools.js";

it("trains the 2D U-Net, the 3D U-Net and the V-Net a few steps on tiny data, reproducibly and resumably, and their ONNX exports match PyTorch to 1e-4", {
  timeout: 300_000,
}, async () => {
  const out = tempDir("training-");
  await exec("/usr/bin/python3", [path.join(ROOT, "training", "smoke.py"), "--out", out, "--steps", "6"], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const { resume, ...report } = JSON.parse(readFileSync(path.join(out, "smoke.json"), "utf8")) as Record<
    string,
    { input: number[]; output: number[]; losses: number[]; reproducible: boolean }
  > & {
    resume: { steps: number; stoppedAfter: number; losses: number[]; resumedLosses: number[]; identical: boolean };
  };
  assert.deepEqual(Object.keys(report), ["unet2d", "unet3d", "vnet"]);
  // training/trainer.py: a run stopped halfway and resumed from its checkpoint ends as an uninterrupted one
  assert.equal(resume.stoppedAfter, 3);
  assert.equal(resume.resumedLosses.length, 6);
  assert.ok(
    resume.identical,
    `resumed run: losses ${resume.resumedLosses.join(", ")} vs ${resume.losses.join(", ")}, or its weights, differ`,
  );
  for (const [name, r] of Object.entries(report)) {
    assert.ok(r.reproducible, `${name}: two runs with the same seed give the same losses`);
    assert.ok(
      r.losses.at(-1)! < r.losses[0]!,
      `${name}: the loss fell (${r.losses.map((l) => l.toFixed(3)).join(" → ")})`,
    );
    const floats = (f: string) => {
      const b = readFileSync(path.join(out, name, f));
      return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    };
    const session = await ort.InferenceSession.create(path.join(out, name, "model.onnx"), {
      executionProviders: ["cpu"],
    });
    try {
      const result = await session.run({ image: new ort.Tensor("float32", floats("input.f32"), r.input) });
      const got = result.logits!;
      assert.deepEqual(got.dims.map(Number), r.output, `${name}: output shape`);
      const want = floats("output.f32");
      const data = got.data as Float32Array;
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(data[i]! - want[i]!));
      assert.ok(worst <= 1e-4, `${name}: onnxruntime and PyTorch differ by up to ${worst}`);
      console.log(
        `# ${name}: losses ${r.losses.map((l) => l.toFixed(3)).join(" → ")}; ONNX vs PyTorch max |Δ| ${worst.toExponential(2)} on ${r.input.join("×")}`,
      );
    } finally {
      await session.release();
    }
  }
});
