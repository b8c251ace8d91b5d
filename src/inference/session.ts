import { readFileSync } from "node:fs";
import ort from "onnxruntime-node";
import { DelineateError } from "../errors.js";
import type { Logger } from "../log.js";
import type { ModelManifest } from "../models/manifest.js";
import { type ConvHead, splitHead } from "./headSplit.js";

export type ExecutionProvider = "cuda" | "webgpu" | "cpu";

/**
 * A network as the engine runs it: whole, or (`head` present) without its last 1×1×1 convolution, its output then
 * the `featureOutput` features that the head turns into logits.
 */
export interface ModelSession {
  session: ort.InferenceSession;
  split?: { featureOutput: string; head: ConvHead };
}

export interface LoadedSession extends ModelSession {
  provider: ExecutionProvider;
}

/** Whether the engine runs this model with its head split off (when the network has one): the manifest's choice; never on the nnU-Net path, which blends whole logits its own way. */
export const wantsHeadSplit = (manifest: ModelManifest): boolean =>
  manifest.inference.headSplit && manifest.preprocessing !== "nnunet";

/**
 * Creates an onnxruntime session, trying execution providers in the configured order and keeping the
 * first that loads the model. Sessions are created once per model and reused: creating and releasing
 * them grows RSS (onnxruntime #25325).
 */
export async function createSession(
  onnxPath: string,
  options: {
    executionProviders: readonly ExecutionProvider[];
    intraOpThreads: number;
    dimensions?: 2 | 3;
    /**
     * run the network without its last 1×1×1 convolution when it ends in one with fewer inputs than outputs
     * (headSplit.ts); default false
     */
    headSplit?: boolean;
  },
  log: Logger,
): Promise<LoadedSession> {
  const failures: string[] = [];
  // only worth it when fewer features go into the head than classes come out: what is blended and held per voxel
  // is the features instead of the logits, so with 2 classes from 16 features it would cost more
  const found = options.headSplit ? splitHead(readFileSync(onnxPath)) : undefined;
  const split = found && found.head.features < found.head.classes ? found : undefined;
  for (const provider of options.executionProviders) {
    const cannot = provider === "webgpu" && options.dimensions === 3 ? webgpuCannotRun(onnxPath) : undefined;
    if (cannot) {
      failures.push(`${provider}: ${cannot}`);
      log.warn(`WebGPU skipped for this model: ${cannot}; trying the next provider`, { provider, model: onnxPath });
      continue;
    }
    try {
      const settings: ort.InferenceSession.SessionOptions = {
        executionProviders: [provider],
        graphOptimizationLevel: "all",
        ...(options.intraOpThreads > 0 ? { intraOpNumThreads: options.intraOpThreads } : {}),
        // idle intra-op threads sleep instead of spinning: an operator here runs for milliseconds to seconds, so the
        // wake-up costs nothing measurable, and spinning took ~10 % more CPU per 128³ tile (bench/SPEED.md) from
        // whatever else shares the machine
        extra: { session: { intra_op: { allow_spinning: "0" } } },
      };
      if (split) {
        const session = await ort.InferenceSession.create(split.onnx, settings);
        return { session, provider, split: { featureOutput: split.featureOutput, head: split.head } };
      }
      return { session: await ort.InferenceSession.create(onnxPath, settings), provider };
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
