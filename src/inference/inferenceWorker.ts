import { Worker } from "node:worker_threads";
import { DelineateError } from "../errors.js";
import type { Logger } from "../log.js";
import type { ModelPackage } from "../models/loadModel.js";
import type { LabelMap, Volume } from "../volume/volume.js";
import type { ExecutionProvider } from "./session.js";
import { fromWorkerFailure, type WorkerFailure } from "./workerFailure.js";
import type { WorkerInit } from "./workerMain.js";

export interface InferenceRequest {
  id: number;
  volume: {
    dims: Volume["dims"];
    spacing: Volume["spacing"];
    direction: Volume["direction"];
    seriesInstanceUID: string;
    data: ArrayBuffer;
  };
}

export type InferenceReply =
  | { type: "ready"; provider: ExecutionProvider }
  | ({ type: "failed" } & WorkerFailure)
  | { type: "log"; level: "warn"; message: string; fields: Record<string, unknown> }
  | { type: "result"; id: number; labels: ArrayBuffer; data: ArrayBuffer }
  | ({ type: "error"; id: number; data: ArrayBuffer } & WorkerFailure);

interface Pending {
  volume: Volume;
  resolve: (labels: LabelMap) => void;
  reject: (err: DelineateError) => void;
}

/**
 * One model's inference on a worker thread. The volume's buffer is transferred to the worker and back (no
 * copy); while a request is out, `volume.data` is empty. The session is created once, in the worker.
 */
export class InferenceWorker {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private constructor(
    private readonly worker: Worker,
    readonly provider: ExecutionProvider,
  ) {}

  /** @throws DelineateError DLN_ERR_INFERENCE when no configured execution provider can load the model. */
  static async start(
    model: ModelPackage,
    options: { executionProviders: readonly ExecutionProvider[]; intraOpThreads: number },
    log: Logger,
  ): Promise<InferenceWorker> {
    const init: WorkerInit = {
      onnxPaths: model.onnxPaths,
      manifest: model.manifest,
      executionProviders: [...options.executionProviders],
      intraOpThreads: options.intraOpThreads,
    };
    const worker = new Worker(new URL("./workerMain.js", import.meta.url), { workerData: init });
    const provider = await new Promise<ExecutionProvider>((resolve, reject) => {
      const onMessage = (m: InferenceReply) => {
        if (m.type === "log") log.warn(m.message, m.fields);
        else if (m.type === "ready") resolve(m.provider);
        else if (m.type === "failed") reject(fromWorkerFailure(m));
      };
      worker.on("message", onMessage);
      worker.once("error", (err) =>
        reject(
          new DelineateError(
            "DLN_ERR_INFERENCE",
            `inference worker failed to start: ${err.message}`,
            {},
            { cause: err },
          ),
        ),
      );
    });
    const self = new InferenceWorker(worker, provider);
    worker.removeAllListeners("message");
    worker.on("message", (m: InferenceReply) => self.onReply(m, log));
    worker.on("error", (err) => self.failAll(`inference worker crashed: ${err.message}`, err));
    worker.on("exit", (code) => self.failAll(`inference worker exited (code ${code})`));
    return self;
  }

  /** Segments a volume on the worker thread. @throws DelineateError from the model or the worker. */
  segment(volume: Volume): Promise<LabelMap> {
    const id = this.nextId++;
    return new Promise<LabelMap>((resolve, reject) => {
      this.pending.set(id, { volume, resolve, reject });
      const data = volume.data.buffer as ArrayBuffer;
      const req: InferenceRequest = {
        id,
        volume: {
          dims: volume.dims,
          spacing: volume.spacing,
          direction: volume.direction,
          seriesInstanceUID: volume.seriesInstanceUID,
          data,
        },
      };
      this.worker.postMessage(req, [data]);
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners("exit");
    await this.worker.terminate();
  }

  private onReply(m: InferenceReply, log: Logger): void {
    if (m.type === "log") return void log.warn(m.message, m.fields);
    if (m.type !== "result" && m.type !== "error") return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    p.volume.data = new Float32Array(m.data); // the buffer comes home
    if (m.type === "result") p.resolve({ dims: p.volume.dims, data: new Uint8Array(m.labels) });
    else p.reject(fromWorkerFailure(m, { seriesInstanceUID: p.volume.seriesInstanceUID }));
  }

  private failAll(message: string, cause?: Error): void {
    for (const p of this.pending.values())
      p.reject(
        new DelineateError(
          "DLN_ERR_INFERENCE",
          message,
          { seriesInstanceUID: p.volume.seriesInstanceUID },
          cause ? { cause } : undefined,
        ),
      );
    this.pending.clear();
  }
}
