import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Config } from "./config/schema.js";
import { loadPixelDecoders } from "./dicom/pixelDecoders.js";
import { DelineateError } from "./errors.js";
import { InferenceWorker } from "./inference/inferenceWorker.js";
import { CHANGE_FEED_CURSOR, OrthancChangeFeed } from "./ingest/orthancChangeFeed.js";
import { PushedStudies } from "./ingest/pushedStudies.js";
import { QidoPoller } from "./ingest/qidoPoller.js";
import { repeatEvery } from "./ingest/repeat.js";
import { defaultWorker } from "./jobs/identity.js";
import type { Job, JobResult } from "./jobs/job.js";
import type { JobStore } from "./jobs/jobStore.js";
import { openJobStore } from "./jobs/openStore.js";
import { runRouteJob } from "./jobs/routeJob.js";
import { runSegmentJob } from "./jobs/segmentJob.js";
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
import { NodeMetrics } from "./server/metrics.js";
import { stowRouter } from "./server/stow.js";
import { webhookRouter } from "./server/webhook.js";
import { VERSION } from "./version.js";

/** How often a node records that it is alive (GET /healthz lists the cluster's nodes with their last beat). */
const BEAT_MS = 5000;

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
  const roles = new Set(config.roles);
  // every node reads the manifests (routing needs them); only a worker starts inference
  const models = new Map<string, { pkg: ModelPackage; inference?: InferenceWorker }>();
  const closeModels = () => Promise.all([...models.values()].map((m) => m.inference?.close()));
  try {
    for (const id of modelIds) {
      const pkg = loadModelPackage(config.model.dir, id);
      const serves = roles.has("worker") && (config.jobs.models?.includes(id) ?? true);
      const inference = serves ? await InferenceWorker.start(pkg, config.inference, log) : undefined;
      models.set(id, { pkg, ...(inference ? { inference } : {}) });
      log.info("model loaded", { model: id, version: pkg.manifest.version, executionProvider: inference?.provider });
    }
  } catch (err) {
    await closeModels();
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

  const leaseMs = config.jobs.leaseSeconds * 1000;
  const identity = {
    ...defaultWorker(leaseMs),
    ...(config.jobs.models ? { models: config.jobs.models } : {}),
  };
  let store: JobStore;
  try {
    store = await openJobStore(config.store.url, config.dataDir, uid, identity, log);
  } catch (err) {
    await closeModels();
    throw err;
  }
  const recovered = await store.recoverInterrupted();
  if (recovered) log.warn("jobs interrupted by a previous stop were queued again", { count: recovered });

  const cluster = async () => {
    const c = await store.cluster();
    const now = Date.now();
    // a node is alive while its beats keep coming (three missed: gone)
    return { ...c, nodes: c.nodes.map((n) => ({ ...n, alive: now - n.lastSeen < 3 * BEAT_MS })) };
  };
  const metrics = new NodeMetrics(
    (kind) => store.counts(kind),
    async () => {
      const c = await cluster();
      return { ...c, nodesAlive: c.nodes.filter((n) => n.alive).length };
    },
  );
  const pushed = new PushedStudies(path.join(config.dataDir, "pushed"));
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
    if (!inference) throw new DelineateError("DLN_ERR_INTERNAL", "a node without the worker role ran a job");
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
      cancelRequested: () => store.cancelRequested(job),
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
        // a node without the worker role reads the manifests only
        executionProvider: m.inference?.provider ?? "none on this node",
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
    { ...config.jobs, idlePollMs: 1000, heartbeatMs: leaseMs / 3 },
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
    serveApi: roles.has("api"),
    apiToken: config.http.apiToken,
    onRetry: () => worker.wake(),
    metrics: metrics.registry,
    dryRun: (study) => routeStudy(pacs, study, rules),
    ...(config.ingest.webhook ? { apiRouters: { "/webhook": webhookRouter({ announce, log }) } } : {}),
    ...(config.ingest.stow.enabled
      ? {
          dicomWeb: stowRouter({
            pushed,
            received: (uid) => store.notePushed(uid, Date.now()),
            maxBodyBytes: config.ingest.stow.maxBodyMiB * 2 ** 20,
            log,
          }),
        }
      : {}),
    health: async () => ({
      version: VERSION,
      models: [...models.entries()].map(([id, m]) => ({
        id,
        version: m.pkg.manifest.version,
        executionProvider: m.inference?.provider,
      })),
      rules: rules.map((r) => r.name),
      roles: config.roles,
      ingestCursor: (await store.cursor(CHANGE_FEED_CURSOR)) ?? 0,
      workerId: identity.workerId,
      cluster: await cluster(),
    }),
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.http.port, config.http.host, () => resolve(s));
    s.once("error", reject);
  });
  const httpPort = (server.address() as AddressInfo).port;
  const beats = repeatEvery(
    BEAT_MS,
    () =>
      store.beat({
        workerId: identity.workerId,
        roles: config.roles,
        models: [...models.entries()].filter(([, m]) => m.inference).map(([id]) => id),
      }),
    (err) => log.warn("could not record this node's beat; will try again", { error: err.message }),
  );
  if (roles.has("worker")) worker.start();
  // the pollers run on one ingest node of the cluster at a time (the store's lead); the others wait to take over
  const pollers = [
    ...(config.ingest.changeFeed ? [() => feed.pollOnce()] : []),
    ...(config.ingest.qido.enabled ? [() => qido.pollOnce()] : []),
  ];
  let leading: boolean | undefined; // logged on every change, the first answer included
  const ingest =
    roles.has("ingest") && pollers.length
      ? repeatEvery(
          config.ingest.pollIntervalSeconds * 1000,
          async () => {
            const lead = await store.tryLead("ingest-pollers");
            if (lead !== leading) log.info(lead ? "leading ingest polling" : "another node leads ingest polling");
            leading = lead;
            if (lead) for (const poll of pollers) await poll();
          },
          (err) => log.warn("ingest poll failed; will try again", { error: err.message }),
        )
      : undefined;
  // pushed studies are queued once quiet; the check is cheap (one indexed query), safe on every api node at once
  const quietCheck =
    config.ingest.stow.enabled && roles.has("api")
      ? repeatEvery(
          1000,
          async () => {
            const queued = await store.queueQuietPushed(Date.now(), config.ingest.stow.quietSeconds * 1000);
            if (queued.length) {
              log.info("studies announced by STOW-RS", { studyInstanceUIDs: queued });
              worker.wake();
            }
          },
          (err) => log.warn("STOW-RS quiet check failed; will try again", { error: err.message }),
        )
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
      await beats.stop();
      await quietCheck?.stop();
      await ingest?.stop();
      await worker.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeModels();
      await store.close();
      dashboard.audit.close();
      log.info("node stopped");
    },
  };
}
