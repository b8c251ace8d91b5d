/**
 * The inference worker thread: holds the model's onnxruntime sessions (one per fold) and runs segmentVolume, so the node's
 * event loop (HTTP API, change feed) never waits on a model. Messages are InferenceRequest / InferenceReply.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { Logger } from "../log.js";
import type { ModelManifest } from "../models/manifest.js";
import type { InferenceReply, InferenceRequest } from "./inferenceWorker.js";
import { segmentVolume } from "./segmentVolume.js";
import { createSession, type ExecutionProvider, wantsHeadSplit } from "./session.js";
import { toWorkerFailure } from "./workerFailure.js";

export interface WorkerInit {
  /** one file, or one per fold */
  onnxPaths: string[];
  manifest: ModelManifest;
  executionProviders: ExecutionProvider[];
  intraOpThreads: number;
}

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (reply: InferenceReply, transfer: ArrayBuffer[] = []) => port.postMessage(reply, transfer);
// Log lines travel to the main thread's logger; the worker has none of its own.
const log = {
  warn: (message: string, fields: Record<string, unknown>) => post({ type: "log", level: "warn", message, fields }),
} as unknown as Logger;

const ready = Promise.all(
  init.onnxPaths.map((p) =>
    createSession(p, { ...init, dimensions: init.manifest.dimensions, headSplit: wantsHeadSplit(init.manifest) }, log),
  ),
).then(
  (s) => {
    post({ type: "ready", provider: s[0]!.provider });
    return s;
  },
  (err: unknown) => {
    post({ type: "failed", ...toWorkerFailure(err) });
    return undefined;
  },
);

port.on("message", async (req: InferenceRequest) => {
  const sessions = await ready;
  if (!sessions) return;
  try {
    const labels = await segmentVolume(
      { ...req.volume, data: new Float32Array(req.volume.data) },
      init.manifest,
      sessions,
    );
    post({ type: "result", id: req.id, labels: labels.data.buffer as ArrayBuffer, data: req.volume.data }, [
      labels.data.buffer as ArrayBuffer,
      req.volume.data,
    ]);
  } catch (err) {
    // code, context and cause cross as fields: postMessage would clone a DelineateError as a bare Error
    post({ type: "error", id: req.id, data: req.volume.data, ...toWorkerFailure(err) }, [req.volume.data]);
  }
});
