import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Config } from "./config/schema.js";
import path from "node:path";
import { CHANGE_FEED_CURSOR, OrthancChangeFeed } from "./ingest/orthancChangeFeed.js";
import { PushedStudies } from "./ingest/pushedStudies.js";
import { QidoPoller } from "./ingest/qidoPoller.js";
import { repeatEvery } from "./ingest/repeat.js";
import { InferenceWorker } from "./inference/inferenceWorker.js";
import { runJob } from "./jobs/runJob.js";
import { JobStore } from "./jobs/store.js";
import { JobWorker } from "./jobs/worker.js";
import type { Logger } from "./log.js";
import { loadModelPackage } from "./models/loadModel.js";
import { newUid } from "./outputs/uid.js";
import { DicomWebClient } from "./pacs/dicomweb.js";
import { OrthancRest } from "./pacs/orthancChanges.js";
import { routeStudy } from "./route/routeStudy.js";
import type { RouteRule } from "./route/selectSeries.js";
import { createApp } from "./server/app.js";
import { NodeMetrics } from "./server/metrics.js";
import { stowRouter } from "./server/stow.js";
import { webhookRouter } from "./server/webhook.js";
import { VERSION } from "./version.js";

export interface RunningNode {
  httpPort: number;
  /** stops ingest, lets running jobs finish their stage, closes the server, the inference worker and the store */
  stop(): Promise<void>;
}

/**
 * `delineate serve`: the job store, ingest (change feed, webhook, QIDO-RS polling, STOW-RS), the job worker, the inference worker
 * thread and the HTTP server, wired from a frozen configuration. Jobs a crash left running are queued again
 * before anything starts.
 */
export async function startNode(config: Readonly<Config>, log: Logger): Promise<RunningNode> {
  const uid = () => newUid(config.outputs.uidRoot);
  const model = loadModelPackage(config.model.dir, config.model.id);
  const inference = await InferenceWorker.start(model, config.inference, log);
  const provider = inference.provider;
  log.info("model loaded", { model: model.manifest.id, version: model.manifest.version, executionProvider: provider });

  const store = new JobStore(config.dataDir, uid);
  const recovered = store.recoverInterrupted();
  if (recovered) log.warn("jobs interrupted by a previous stop were queued again", { count: recovered });

  const metrics = new NodeMetrics(() => store.counts());
  const pushed = new PushedStudies(path.join(config.dataDir, "pushed"));
  const pacs = new DicomWebClient(config.pacs);
  const route: RouteRule = { modality: model.manifest.modality, ...config.route };
  const worker = new JobWorker(
    store,
    (job) =>
      runJob(job, {
        pacs,
        pushed,
        model,
        route,
        infer: (volume) => inference.segment(volume),
        executionProvider: provider,
        newUid: uid,
        outputs: config.outputs,
        softwareVersion: VERSION,
        log,
        cancelRequested: () => store.cancelRequested(job.id),
      }),
    { ...config.jobs, idlePollMs: 1000 },
    log,
    (state, timings) => metrics.jobFinished(state, timings),
  );
  const modelKey = { id: model.manifest.id, version: model.manifest.version };
  const feed = new OrthancChangeFeed(
    new OrthancRest(config.pacs),
    store,
    modelKey,
    config.ingest.pollIntervalSeconds * 1000,
    () => worker.wake(),
    log,
  );

  const announce = (uid: string) => {
    const n = store.enqueue([uid], modelKey);
    if (n) worker.wake();
    return n;
  };
  const qido = new QidoPoller(
    pacs,
    store,
    modelKey,
    { intervalMs: config.ingest.pollIntervalSeconds * 1000, lookbackDays: config.ingest.qido.lookbackDays, quietSeconds: config.ingest.qido.quietSeconds },
    () => worker.wake(),
    log,
  );
  const app = createApp({
    store,
    apiToken: config.http.apiToken,
    onRetry: () => worker.wake(),
    metrics: metrics.registry,
    dryRun: (study) => routeStudy(pacs, study, route),
    ...(config.ingest.webhook ? { apiRouters: { "/webhook": webhookRouter({ announce, log }) } } : {}),
    ...(config.ingest.stow.enabled
      ? { dicomWeb: stowRouter({ pushed, received: (uid) => store.notePushed(uid, Date.now()), maxBodyBytes: config.ingest.stow.maxBodyMiB * 2 ** 20, log }) }
      : {}),
    health: () => ({ version: VERSION, model: model.manifest.id, executionProvider: provider, ingestCursor: store.cursor(CHANGE_FEED_CURSOR) ?? 0 }),
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.http.port, config.http.host, () => resolve(s));
    s.once("error", reject);
  });
  const httpPort = (server.address() as AddressInfo).port;
  worker.start();
  if (config.ingest.changeFeed) feed.start();
  if (config.ingest.qido.enabled) qido.start();
  // pushed studies are queued once quiet; the check is cheap (one indexed query)
  const quietCheck = config.ingest.stow.enabled
    ? repeatEvery(
        1000,
        async () => {
          const queued = store.queueQuietPushed(Date.now(), config.ingest.stow.quietSeconds * 1000, modelKey);
          if (queued.length) {
            log.info("studies announced by STOW-RS", { studyInstanceUIDs: queued, newJobs: queued.length });
            worker.wake();
          }
        },
        (err) => log.warn("STOW-RS quiet check failed; will try again", { error: err.message }),
      )
    : undefined;
  log.info("node started", { httpPort, pacs: config.pacs.url, model: model.manifest.id, dataDir: config.dataDir });

  return {
    httpPort,
    async stop() {
      await quietCheck?.stop();
      await feed.stop();
      await qido.stop();
      await worker.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await inference.close();
      store.close();
      log.info("node stopped");
    },
  };
}
