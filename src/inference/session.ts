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
  options: { executionProviders: readonly ExecutionProvider[]; intraOpThreads: number },
  log: Logger,
): Promise<LoadedSession> {
  const failures: string[] = [];
  for (const provider of options.executionProviders) {
    try {
      const session = await ort.InferenceSession.create(onnxPath, {
        executionProviders: [provider],
        graphOptimizationLevel: "all",
        ...(options.intraOpThreads > 0 ? { intraOpNumThreads: options.intraOpThreads } : {}),
      });
      return { session, provider };
    } catch (err) {
      failures.push(`${provider}: ${(err as Error).message.split("\n")[0]}`);
      log.warn("execution provider unavailable, trying the next", { provider, model: onnxPath, error: (err as Error).message.split("\n")[0] });
    }
  }
  throw new DelineateError("DLN_ERR_INFERENCE", `no execution provider could load ${onnxPath}: ${failures.join("; ")}`, { model: onnxPath });
}
