import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Config } from "./config/schema.js";
import { loadPixelDecoders } from "./dicom/pixelDecoders.js";
import { DelineateError } from "./errors.js";
import { InferenceWorker } from "./inference/inferenceWorker.js";
import { CHANGE_FEED_CURSOR, OrthancChangeFeed } from "./ingest/orthancChangeFeed.js";
import { sweepPushed } from "./ingest/pushedRetention.js";
import { PushedStudies } from "./ingest/pushedStudies.js";
import { QidoPoller } from "./ingest/qidoPoller.js";
import { repeatEvery } from "./ingest/repeat.js";
import type { Job, JobResult } from "./jobs/job.js";
import type { JobStore } from "./jobs/jobStore.js";
import { runRouteJob } from "./jobs/routeJob.js";
import { runSegmentJob } from "./jobs/segmentJob.js";
import { SqliteJobStore } from "./jobs/sqliteStore.js";
import { JobWorker } from "./jobs/worker.js";
import type { Logger } from "./log.js";
import { loadModelPackage, type ModelPackage } from "./models/loadModel.js";
import { deviceObserverUid, newUid } from "./outputs/uid.js";
import { DicomWebClient } from "./pacs/dicomweb.js";
import { OrthancRest } from "./pacs/orthancChanges.js";
import { routeStudy } from "./route/routeStudy.js";
import { resolveRules } from "./route/rules.js";
import { createApp } from "./server/app.js";
import { createDashboard } from "./server/dashboard/index.js";
import { createNodeServer } from "./server/limits.js";
import { NodeMetrics } from "./server/metrics.js";
import { stowRouter } from "./server/stow.js";
import { webhookRouter } from "./server/webhook.js";
import { VERSION } from "./version.js";

export interface RunningNode {
  httpPort: number;
  /** stops ingest, lets running jobs finish their stage, closes the server, the inference workers and the store */
  stop(): Promise<void>;
}

/**
 * `delineate serve`: the job store, ingest (change feed, webhook, QIDO-RS polling, STOW-RS), the routing rules, the job worker,
 * one inference worker thread per model and the HTTP server, wired from a frozen configuration. Jobs a crash left running are queued again
 * before anything starts.
 */
export async function startNode(config: Readonly<Config>, log: Logger): Promise<RunningNode> {
  const uid = () => newUid(config.outputs.uidRoot);
  const deviceObserverUID = deviceObserverUid(config.outputs);
  // Every model a rule names is loaded and gets its own inference worker thread (its session created once).
  const modelIds = new Set((config.routes ?? []).flatMap((r) => r.models));
  if (!config.routes) modelIds.add(config.model.id);
  const models = new Map<string, { pkg: ModelPackage; inference: InferenceWorker }>();
  try {
    for (const id of modelIds) {
      const pkg = loadModelPackage(config.model.dir, id);
      const inference = await InferenceWorker.start(pkg, config.inference, log);
      models.set(id, { pkg, inference });
      log.info("model loaded", { model: id, version: pkg.manifest.version, executionProvider: inference.provider });
    }
  } catch (err) {
    await Promise.all([...models.values()].map((m) => m.inference.close()));
    throw err;
  }
  const installed = (id: string) => {
    const m = models.get(id);
    if (!m)
      throw new DelineateError(
        "DLN_ERR_MODEL_INVALID",
        `model ${id} is not named by any routing rule of this node's configuration`,
        { model: id },
      );
    return m;
  };
  // instances pushed to the node may be compressed (a PACS transcodes what we fetch; a sender does not)
  const decoders = await loadPixelDecoders();
  const rules = resolveRules(config.routes, config.model.id, (id) => installed(id).pkg.manifest);

  const store: JobStore = new SqliteJobStore(config.dataDir, uid);
  const recovered = await store.recoverInterrupted();
  if (recovered) log.warn("jobs interrupted by a previous stop were queued again", { count: recovered });

  const metrics = new NodeMetrics((kind) => store.counts(kind));
  const stow = config.ingest.stow;
  const pushed = new PushedStudies(path.join(config.dataDir, "pushed"), stow.duplicates, stow.maxStoredMiB * 2 ** 20);
  const pacs = new DicomWebClient(config.pacs);
  const destinations = new Map<string, DicomWebClient>([
    ["pacs", pacs],
    ...Object.entries(config.destinations).map(([name, conn]) => [name, new DicomWebClient(conn)] as const),
  ]);
  const sourceOf = (job: Job) => (job.source === "pushed" ? pushed : pacs);
  const run = (job: Job): Promise<JobResult> => {
    if (job.kind === "route")
      return runRouteJob(job, {
        source: sourceOf(job),
        rules,
        modelVersion: (id) => installed(id).pkg.manifest.version,
        log,
      });
    const target = job.segment;
    const rule = rules.find((r) => r.name === target.rule);
    const destination = destinations.get(target.destination);
    if (!rule || !destination) {
      throw new DelineateError(
        "DLN_ERR_CONFIG_INVALID",
        `job ${job.id} was made by rule "${target.rule}" for destination "${target.destination}", which the configuration no longer has`,
        {
          studyInstanceUID: job.studyInstanceUID,
        },
      );
    }
    const { pkg, inference } = installed(target.modelId);
    return runSegmentJob(job, {
      source: sourceOf(job),
      destination,
      model: pkg,
      sopClassUIDs: rule.match.sopClassUIDs,
      volume: { ...config.volume, decoders },
      infer: (volume) => inference.segment(volume),
      executionProvider: inference.provider,
      newUid: uid,
      outputs: config.outputs,
      deviceObserverUID,
      softwareVersion: VERSION,
      log,
      cancelRequested: () => store.cancelRequested(job.id),
    });
  };
  const dashboard = createDashboard({
    config,
    store,
    rules,
    models: () =>
      [...models.entries()].map(([id, m]) => ({
        id,
        version: m.pkg.manifest.version,
        executionProvider: m.inference.provider,
      })),
    pacs,
    source: sourceOf,
    destination: (name) => destinations.get(name),
    labels: (id) => models.get(id)?.pkg.manifest.labels,
    volume: { ...config.volume, decoders },
    dryRun: (study) => routeStudy(pacs, study, rules),
    onRetry: () => worker.wake(),
    log,
  });
  const worker = new JobWorker(
    store,
    dashboard.audited(run),
    { ...config.jobs, idlePollMs: 1000, absentStudyMs: config.ingest.absentStudySeconds * 1000 },
    log,
    (kind, state, timings) => metrics.jobFinished(kind, state, timings),
  );
  const feed = new OrthancChangeFeed(
    new OrthancRest(config.pacs),
    store,
    config.ingest.pollIntervalSeconds * 1000,
    () => worker.wake(),
    log,
  );

  const announce = async (uid: string) => {
    const n = await store.enqueue([uid]);
    if (n) worker.wake();
    return n;
  };
  const qido = new QidoPoller(
    pacs,
    store,
    {
      intervalMs: config.ingest.pollIntervalSeconds * 1000,
      lookbackDays: config.ingest.qido.lookbackDays,
      quietSeconds: config.ingest.qido.quietSeconds,
    },
    () => worker.wake(),
    log,
  );
  const app = createApp({
    store,
    audit: dashboard.audit,
    dashboard: dashboard.router,
    log,
    apiToken: config.http.apiToken,
    onRetry: () => worker.wake(),
    metrics: metrics.registry,
    dryRun: (study) => routeStudy(pacs, study, rules),
    ...(config.ingest.webhook
      ? {
          apiRouters: {
            "/webhook": webhookRouter({
              announce,
              pending: { count: () => store.pendingRoutes("pacs"), max: config.ingest.maxPendingStudies },
              log,
            }),
          },
        }
      : {}),
    ...(config.ingest.stow.enabled
      ? {
          dicomWeb: stowRouter({
            pushed,
            received: (uid, replaced) => store.notePushed(uid, Date.now(), replaced),
            maxBodyBytes: config.ingest.stow.maxBodyMiB * 2 ** 20,
            maxConcurrentRequests: config.ingest.stow.maxConcurrentRequests,
            log,
          }),
        }
      : {}),
    health: async () => ({
      version: VERSION,
      models: [...models.entries()].map(([id, m]) => ({
        id,
        version: m.pkg.manifest.version,
        executionProvider: m.inference.provider,
      })),
      rules: rules.map((r) => r.name),
      ingestCursor: (await store.cursor(CHANGE_FEED_CURSOR)) ?? 0,
    }),
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = createNodeServer(app, config.http).listen(config.http.port, config.http.host, () => resolve(s));
    s.once("error", reject);
  });
  const httpPort = (server.address() as AddressInfo).port;
  worker.start();
  if (config.ingest.changeFeed) feed.start();
  if (config.ingest.qido.enabled) qido.start();
  const absentPurge = purgeAbsentStudies(store, config.ingest.absentStudyRetentionHours, log);
  const pushedTimers = config.ingest.stow.enabled
    ? startPushedTimers(config.ingest.stow, pushed, store, worker, log)
    : undefined;
  log.info("node started", {
    httpPort,
    pacs: config.pacs.url,
    models: [...models.keys()],
    rules: rules.map((r) => r.name),
    dataDir: config.dataDir,
  });

  return {
    httpPort,
    async stop() {
      await pushedTimers?.stop();
      await absentPurge.stop();
      await feed.stop();
      await qido.stop();
      await worker.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...models.values()].map((m) => m.inference.close()));
      await store.close();
      dashboard.audit.close();
      log.info("node stopped");
    },
  };
}

/**
 * STOW-RS's two timers: a pushed study is queued once quiet (every second; one indexed query), and pushed studies
 * past their retention are deleted (every minute).
 */
function startPushedTimers(
  stow: Config["ingest"]["stow"],
  pushed: PushedStudies,
  store: JobStore,
  worker: JobWorker,
  log: Logger,
): { stop(): Promise<void> } {
  const quietCheck = repeatEvery(
    1000,
    async () => {
      const queued = await store.queueQuietPushed(Date.now(), stow.quietSeconds * 1000);
      if (queued.length) {
        log.info("studies announced by STOW-RS", { studyInstanceUIDs: queued });
        worker.wake();
      }
    },
    (err) => log.warn("STOW-RS quiet check failed; will try again", { error: err.message }),
  );
  const retention = repeatEvery(
    60_000,
    () => sweepPushed(pushed, store, Date.now(), stow.retentionHours * 3_600_000, log),
    (err) => log.warn("pushed data retention sweep failed; will try again", { error: err.message }),
  );
  return {
    async stop() {
      await quietCheck.stop();
      await retention.stop();
    },
  };
}

/**
 * Every ten minutes, deletes the route jobs that failed DLN_ERR_STUDY_NOT_FOUND more than `hours` ago: the record of
 * a study that never existed (a webhook announcing any UID) is not kept for ever.
 */
function purgeAbsentStudies(store: JobStore, hours: number, log: Logger): { stop(): Promise<void> } {
  return repeatEvery(
    600_000,
    async () => {
      const deleted = await store.deleteFailedRoutes("DLN_ERR_STUDY_NOT_FOUND", Date.now() - hours * 3_600_000);
      if (deleted) log.info("route jobs of studies never found deleted", { count: deleted });
    },
    (err) => log.warn("deleting route jobs of studies never found failed; will try again", { error: err.message }),
  );
}
