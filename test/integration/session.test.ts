import assert from "node:assert/strict";
import path from "node:path";
import { it } from "node:test";
import { createSession } from "../../src/inference/session.js";
import type { Logger } from "../../src/log.js";
import { exec, tempDir } from "../helpers/tools.js";

const EXPORT = `
import sys, torch
for name, up in (("transposed", torch.nn.ConvTranspose3d(2, 2, 2, stride=2)), ("upsampled", torch.nn.Sequential(torch.nn.Upsample(scale_factor=2.0), torch.nn.Conv3d(2, 2, 1)))):
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 2, 3, padding=1), torch.nn.MaxPool3d(2), up).eval()
    torch.onnx.export(net, torch.zeros(1, 1, 8, 8, 8), f"{sys.argv[1]}/{name}.onnx", opset_version=17, input_names=["image"], output_names=["logits"])
`;

it("a 3D model with transposed convolutions skips WebGPU with a log line saying why, and loads on the next provider", {
  timeout: 120_000,
}, async () => {
  const dir = tempDir("session-");
  await exec("/usr/bin/python3", ["-c", EXPORT, dir]);
  const lines: string[] = [];
  const log = { warn: (message: string) => lines.push(message) } as unknown as Logger;
  const options = { executionProviders: ["webgpu", "cpu"] as const, intraOpThreads: 0, dimensions: 3 as const };

  const transposed = await createSession(path.join(dir, "transposed.onnx"), options, log);
  assert.equal(transposed.provider, "cpu");
  assert.ok(
    lines.some((l) => /WebGPU skipped for this model: it has transposed convolutions in 3D/.test(l)),
    lines.join("\n"),
  );
  await transposed.session.release();

  // upsampling + convolution: WebGPU is tried (here, without a GPU, it may fail for its own reason, never this one)
  lines.length = 0;
  const upsampled = await createSession(path.join(dir, "upsampled.onnx"), options, log);
  assert.ok(!lines.some((l) => /transposed/.test(l)), lines.join("\n"));
  await upsampled.session.release();
});
