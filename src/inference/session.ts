import { readFileSync } from "node:fs";
import ort from "onnxruntime-node";
import { DelineateError } from "../errors.js";
import type { Logger } from "../log.js";

export type ExecutionProvider = "cuda" | "webgpu" | "cpu";

export interface LoadedSession {
  session: ort.InferenceSession;
  provider: ExecutionProvider;
}

/**
 * Creates an onnxruntime session, trying execution providers in the configured order and keeping the
 * first that loads the model. Sessions are created once per model and reused: creating and releasing
 * them grows RSS (onnxruntime #25325).
 */
export async function createSession(
  onnxPath: string,
  options: { executionProviders: readonly ExecutionProvider[]; intraOpThreads: number; dimensions?: 2 | 3 },
  log: Logger,
): Promise<LoadedSession> {
  const failures: string[] = [];
  for (const provider of options.executionProviders) {
    const cannot = provider === "webgpu" && options.dimensions === 3 ? webgpuCannotRun(onnxPath) : undefined;
    if (cannot) {
      failures.push(`${provider}: ${cannot}`);
      log.warn(`WebGPU skipped for this model: ${cannot}; trying the next provider`, { provider, model: onnxPath });
      continue;
    }
    try {
      const session = await ort.InferenceSession.create(onnxPath, {
        executionProviders: [provider],
        graphOptimizationLevel: "all",
        ...(options.intraOpThreads > 0 ? { intraOpNumThreads: options.intraOpThreads } : {}),
        // idle intra-op threads sleep instead of spinning: an operator here runs for milliseconds to seconds, so the
        // wake-up costs nothing measurable, and spinning took ~10 % more CPU per 128³ tile (bench/SPEED.md) from
        // whatever else shares the machine
        extra: { session: { intra_op: { allow_spinning: "0" } } },
      });
      return { session, provider };
    } catch (err) {
      failures.push(`${provider}: ${(err as Error).message.split("\n")[0]}`);
      log.warn("execution provider unavailable, trying the next", {
        provider,
        model: onnxPath,
        error: (err as Error).message.split("\n")[0],
      });
    }
  }
  throw new DelineateError(
    "DLN_ERR_INFERENCE",
    `no execution provider could load ${onnxPath}: ${failures.join("; ")}`,
    { model: onnxPath },
  );
}

/**
 * Why onnxruntime-node 1.30's WebGPU provider cannot run a 3D model, if it cannot: it has no kernel for 3D transposed
 * convolutions, and it fails when the model runs, not when it loads, so the model is looked at first. An operator's
 * type is stored as plain text in the ONNX protobuf.
 */
function webgpuCannotRun(onnxPath: string): string | undefined {
  if (readFileSync(onnxPath).includes("ConvTranspose")) {
    return "it has transposed convolutions in 3D, which onnxruntime-node 1.30's WebGPU provider cannot run (export with upsampling + convolution instead)";
  }
  return undefined;
}
