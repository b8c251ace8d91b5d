import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { DelineateError } from "../../src/errors.js";
import { slidingWindow } from "../../src/inference/slidingWindow.js";
import { fromWorkerFailure, toWorkerFailure, WorkerCause } from "../../src/inference/workerFailure.js";
import { ds } from "../../src/outputs/attributes.js";
import { ROOT } from "../helpers/tools.js";

const isDelineate = (code: string, message: RegExp, context?: Record<string, string | number>) => (e: unknown) => {
  assert.ok(e instanceof DelineateError, String(e));
  assert.equal(e.code, code);
  assert.match(e.message, message);
  if (context) assert.deepEqual({ ...e.context }, context);
  return true;
};

describe("inference and outputs fail with DelineateErrors", () => {
  it("ds refuses NaN and infinities as DLN_ERR_OUTPUT_INVALID", () => {
    for (const x of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])
      assert.throws(() => ds(x), isDelineate("DLN_ERR_OUTPUT_INVALID", /not a finite number/, { value: String(x) }));
    assert.equal(ds(1 / 3), "0.33333333333333");
  });

  it("slidingWindow refuses an image smaller than its patch as DLN_ERR_INFERENCE, naming both", async () => {
    await assert.rejects(
      slidingWindow(
        new Float32Array(4 * 4 * 2),
        [4, 4, 2],
        2,
        { patch: [4, 4, 3], overlap: 0.5, blend: "constant", mirrorAxes: [] },
        async () => new Float32Array(0),
        () => {},
      ),
      isDelineate("DLN_ERR_INFERENCE", /image 4×4×2 is smaller than the patch 4×4×3/, {
        dims: "4×4×2",
        patch: "4×4×3",
      }),
    );
  });

  it("no bare Error is thrown in src/inference or src/outputs", () => {
    const found: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const file = path.join(dir, name);
        if (statSync(file).isDirectory()) walk(file);
        else if (file.endsWith(".ts"))
          for (const [n, line] of readFileSync(file, "utf8").split("\n").entries())
            if (line.includes("new Error(")) found.push(`${path.relative(ROOT, file)}:${n + 1}`);
      }
    };
    walk(path.join(ROOT, "src", "inference"));
    walk(path.join(ROOT, "src", "outputs"));
    assert.deepEqual(found, []);
  });
});

describe("a failure crosses the inference worker's thread boundary whole", () => {
  // what postMessage does to a message: the structured clone algorithm
  const across = (err: unknown) => structuredClone(toWorkerFailure(err));

  it("a DelineateError keeps its code, message and context, and its cause's name and message", () => {
    const onnx = new TypeError("input 'x' is missing in 'feeds'");
    const sent = new DelineateError(
      "DLN_ERR_INFERENCE",
      "model m on series 1.2.3: input 'x' is missing in 'feeds'",
      { seriesInstanceUID: "1.2.3" },
      { cause: onnx },
    );
    const got = fromWorkerFailure(across(sent), { seriesInstanceUID: "1.2.3" });
    assert.ok(got instanceof DelineateError);
    assert.deepEqual(
      [got.code, got.stage, got.retryable, got.message, { ...got.context }],
      ["DLN_ERR_INFERENCE", "inference", false, sent.message, { seriesInstanceUID: "1.2.3" }],
    );
    assert.ok(got.cause instanceof WorkerCause);
    assert.deepEqual([got.cause.name, got.cause.message], ["TypeError", onnx.message]);
  });

  it("another code stays that code, and the main thread's context is added to the worker's", () => {
    const got = fromWorkerFailure(across(new DelineateError("DLN_ERR_OUTPUT_INVALID", "bad", { value: "NaN" })), {
      seriesInstanceUID: "9.8",
    });
    assert.deepEqual(
      [got.code, got.message, { ...got.context }, got.cause],
      ["DLN_ERR_OUTPUT_INVALID", "bad", { value: "NaN", seriesInstanceUID: "9.8" }, undefined],
    );
  });

  it("anything else thrown in the worker is an inference failure with its cause, not DLN_ERR_INTERNAL", () => {
    const got = fromWorkerFailure(across(new RangeError("Invalid typed array length: -1")));
    assert.deepEqual([got.code, got.message], ["DLN_ERR_INFERENCE", "Invalid typed array length: -1"]);
    assert.ok(got.cause instanceof Error);
    assert.deepEqual([got.cause.name, got.cause.message], ["RangeError", "Invalid typed array length: -1"]);
    const str = fromWorkerFailure(across("out of memory"));
    assert.deepEqual(
      [str.code, str.message, (str.cause as Error).message],
      ["DLN_ERR_INFERENCE", "out of memory", "out of memory"],
    );
  });
});
