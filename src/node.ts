import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Express } from "express";
import type { Config } from "./config/schema.js";
import { loadPixelDecoders, type PixelDecoders } from "./dicom/pixelDecoders.js";
import { DelineateError } from "./errors.js";
import { InferenceWorker } from "./inference/inferenceWorker.js";
import { CHANGE_FEED_CURSOR, OrthancChangeFeed } from "./ingest/orthancChangeFeed.js";
import { sweepPushed } from "./ingest/pushedRetention.js";
import { PushedStudies } from "./ingest/pushedStudies.js";
import { QidoPoller } from "./ingest/qidoPoller.js";
import { repeatEvery } from "./ingest/repeat.js";
import { defaultWorker } from "./jobs/identity.js";
import type { Job, JobResult } from "./jobs/job.js";
import type { JobStore, WorkerIdentity } from "./jobs/jobStore.js";
import { openJobStore } from "./jobs/openStore.js";
import { runRouteJob } from "./jobs/routeJob.js";
import { runSegmentJob } from "./jobs/segmentJob.js";
import { JobWorker } from "./jobs/worker.js";
import type { Logger } from "./log.js";
import { loadModelPackage, type ModelPackage } from "./models/loadModel.js";
import { outboxEntries } from "./notify/facts.js";
import { configuredNotifiers } from "./notify/index.js";
import { NotificationSender } from "./notify/sender.js";
import { deviceObserverUid, newUid } from "./outputs/uid.js";
import { DicomWebClient } from "./pacs/dicomweb.js";
import { OrthancRest } from "./pacs/orthancChanges.js";
import type { StudySource } from "./pacs/source.js";
import { routeStudy } from "./route/routeStudy.js";
import { type RoutingRule, resolveRules } from "./route/rules.js";
import { createApp } from "./server/app.js";
import { createDashboard } from "./server/dashboard/index.js";
import { createNodeServer } from "./server/limits.js";
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

/** A model package this node knows, and its inference worker thread when this node runs it. */
interface LoadedModel {
  pkg: ModelPackage;
  inference?: InferenceWorker;
}

/** What the node's parts share, made once at start-up from the frozen configuration. */
interface Wiring {
  config: Readonly<Config>;
  log: Logger;
  roles: ReadonlySet<string>;
  models: Map<string, LoadedModel>;
  rules: RoutingRule[];
  decoders: PixelDecoders;
  store: JobStore;
  identity: WorkerIdentity;
  pacs: DicomWebClient;
  destinations: Map<string, DicomWebClient>;
  pushed: PushedStudies;
  uid: () => string;
  /** the notifiers configured: a done segment job's result carries one outbox entry for each */
  notifiers: ReturnType<typeof configuredNotifiers>;
}

/** Something started that the node stops on its way out. */
interface Stoppable {
  stop(): Promise<void>;
}

/**
 * `delineate serve`: the job store, ingest (change feed, webhook, QIDO-RS polling, STOW-RS), the routing rules, the
 * job worker, one inference worker thread per model and the HTTP server, wired from a frozen configuration, each
 * part only where the node's roles ask for it. Jobs a crash left running are queued again before anything starts.
 */
export async function startNode(config: Readonly<Config>, log: Logger): Promise<RunningNode> {
  const w = await wire(config, log);
  const metrics = nodeMetrics(w.store);
  const dashboard = wireDashboard(w, () => worker.wake());
  const worker = new JobWorker(
    w.store,
    dashboard.audited(jobRunner(w)),
    {
      ...config.jobs,
      idlePollMs: 1000,
      heartbeatMs: w.identity.leaseMs / 3,
      absentStudyMs: config.ingest.absentStudySeconds * 1000,
    },
    log,
    (kind, state, timings) => {
      metrics.jobFinished(kind, state, timings);
      if (state === "done" && kind === "segment") sender.wake();
    },
  );
  const sender = new NotificationSender(w.store, w.notifiers, { ...config.notify, idlePollMs: 1000 }, log);
  const app = createApp({
    store: w.store,
    audit: dashboard.audit,
    dashboard: dashboard.router,
    serveApi: w.roles.has("api"),
    log,
    apiToken: config.http.apiToken,
    onRetry: () => worker.wake(),
    metrics: metrics.registry,
    dryRun: (study) => routeStudy(w.pacs, study, w.rules),
    ...ingestEndpoints(w, () => worker.wake()),
    health: () => health(w),
  });
  const server = await listen(app, config.http);
  const httpPort = (server.address() as AddressInfo).port;
  const beat = beats(w);
  if (w.roles.has("worker")) worker.start();
  // notifications are sent by worker nodes; the store hands each row to one sender
  if (w.roles.has("worker") && w.notifiers.size) sender.start();
  const background = [beat, ...startIngest(w, () => worker.wake())];
  log.info("node started", {
    httpPort,
    pacs: config.pacs.url,
    models: [...w.models.keys()],
    rules: w.rules.map((r) => r.name),
    roles: config.roles,
    dataDir: config.dataDir,
  });
  return {
    httpPort,
    async stop() {
      for (const b of background) await b.stop();
      await worker.stop();
      await sender.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeModels(w.models);
      await w.store.close();
      dashboard.audit.close();
      log.info("node stopped");
    },
  };
}

/** Loads the models, resolves the rules and opens the job store; on a failure, closes what it had started. */
async function wire(config: Readonly<Config>, log: Logger): Promise<Wiring> {
  const roles = new Set(config.roles);
  const uid = () => newUid(config.outputs.uidRoot);
  const models = await loadModels(config, roles, log);
  try {
    // instances pushed to the node may be compressed (a PACS transcodes what we fetch; a sender does not)
    const decoders = await loadPixelDecoders();
    const rules = resolveRules(config.routes, config.model.id, (id) => installed(models, id).pkg.manifest);
    const { store, identity } = await openStore(config, uid, log);
    const pacs = new DicomWebClient(config.pacs);
    const destinations = new Map<string, DicomWebClient>([
      ["pacs", pacs],
      ...Object.entries(config.destinations).map(([name, conn]) => [name, new DicomWebClient(conn)] as const),
    ]);
    const stow = config.ingest.stow;
    const pushed = new PushedStudies(path.join(config.dataDir, "pushed"), stow.duplicates, stow.maxStoredMiB * 2 ** 20);
    const notifiers = configuredNotifiers(config);
    return { config, log, roles, models, rules, decoders, store, identity, pacs, destinations, pushed, uid, notifiers };
  } catch (err) {
    await closeModels(models);
    throw err;
  }
}

/**
 * Every model a rule names: its manifest read on every node (routing needs it), and its own inference worker thread
 * (its session created once) on a worker that serves it (`jobs.models`, default all).
 */
async function loadModels(
  config: Readonly<Config>,
  roles: ReadonlySet<string>,
  log: Logger,
): Promise<Map<string, LoadedModel>> {
  const modelIds = new Set((config.routes ?? []).flatMap((r) => r.models));
  if (!config.routes) modelIds.add(config.model.id);
  const models = new Map<string, LoadedModel>();
  try {
    for (const id of modelIds) {
      const pkg = loadModelPackage(config.model.dir, id);
      const serves = roles.has("worker") && (config.jobs.models?.includes(id) ?? true);
      const inference = serves ? await InferenceWorker.start(pkg, config.inference, log) : undefined;
      models.set(id, { pkg, ...(inference ? { inference } : {}) });
      log.info("model loaded", { model: id, version: pkg.manifest.version, executionProvider: inference?.provider });
    }
  } catch (err) {
    await closeModels(models);
    throw err;
  }
  return models;
}

async function closeModels(models: Map<string, LoadedModel>): Promise<void> {
  await Promise.all([...models.values()].map((m) => m.inference?.close()));
}

/** A model a rule names. @throws DelineateError DLN_ERR_MODEL_INVALID when no rule of this node names it. */
function installed(models: Map<string, LoadedModel>, id: string): LoadedModel {
  const m = models.get(id);
  if (!m)
    throw new DelineateError(
      "DLN_ERR_MODEL_INVALID",
      `model ${id} is not named by any routing rule of this node's configuration`,
      {
        model: id,
      },
    );
  return m;
}

/** The models as /healthz and the dashboard show them (no execution provider where this node runs no inference). */
function modelInfo(models: Map<string, LoadedModel>) {
  return [...models.entries()].map(([id, m]) => ({
    id,
    version: m.pkg.manifest.version,
    executionProvider: m.inference?.provider,
  }));
}

/** The job store `store.url` names, with this process as its worker; jobs a crash left running are queued again. */
async function openStore(
  config: Readonly<Config>,
  uid: () => string,
  log: Logger,
): Promise<{ store: JobStore; identity: WorkerIdentity }> {
  const identity: WorkerIdentity = {
    ...defaultWorker(config.jobs.leaseSeconds * 1000),
    ...(config.jobs.models ? { models: config.jobs.models } : {}),
  };
  const store = await openJobStore(config.store.url, config.dataDir, uid, identity, log);
  const recovered = await store.recoverInterrupted();
  if (recovered) log.warn("jobs interrupted by a previous stop were queued again", { count: recovered });
  return { store, identity };
}

/** The cluster as the store sees it, each node marked alive while its beats keep coming (three missed: gone). */
async function clusterView(store: JobStore) {
  const c = await store.cluster();
  const now = Date.now();
  return { ...c, nodes: c.nodes.map((n) => ({ ...n, alive: now - n.lastSeen < 3 * BEAT_MS })) };
}

function nodeMetrics(store: JobStore): NodeMetrics {
  return new NodeMetrics(
    (kind) => store.counts(kind),
    async () => {
      const c = await clusterView(store);
      return { ...c, nodesAlive: c.nodes.filter((n) => n.alive).length };
    },
  );
}

/** Where a job's study is read from: the PACS, or the folder STOW-RS wrote it to. */
function sourceOf(w: Wiring, job: Job): StudySource {
  return job.source === "pushed" ? w.pushed : w.pacs;
}

/** Runs one claimed job: a route job applies the rules; a segment job runs its model and stores the outputs. */
function jobRunner(w: Wiring): (job: Job) => Promise<JobResult> {
  const { config, log, rules } = w;
  const deviceObserverUID = deviceObserverUid(config.outputs);
  const notifiers = [...w.notifiers.values()].map((n) => n.name);
  return async (job) => {
    if (job.kind === "route")
      return runRouteJob(job, {
        source: sourceOf(w, job),
        rules,
        modelVersion: (id) => installed(w.models, id).pkg.manifest.version,
        log,
      });
    const target = job.segment;
    const rule = rules.find((r) => r.name === target.rule);
    const destination = w.destinations.get(target.destination);
    if (!rule || !destination) {
      throw new DelineateError(
        "DLN_ERR_CONFIG_INVALID",
        `job ${job.id} was made by rule "${target.rule}" for destination "${target.destination}", which the configuration no longer has`,
        { studyInstanceUID: job.studyInstanceUID },
      );
    }
    const { pkg, inference } = installed(w.models, target.modelId);
    if (!inference) throw new DelineateError("DLN_ERR_INTERNAL", "a node without the worker role ran a job");
    const r = await runSegmentJob(job, {
      source: sourceOf(w, job),
      destination,
      model: pkg,
      sopClassUIDs: rule.match.sopClassUIDs,
      volume: { ...config.volume, decoders: w.decoders },
      infer: (volume) => inference.segment(volume),
      executionProvider: inference.provider,
      newUid: w.uid,
      outputs: config.outputs,
      deviceObserverUID,
      softwareVersion: VERSION,
      log,
      cancelRequested: () => w.store.cancelRequested(job),
      ...(notifiers.length ? { notify: { disclaimer: config.outputs.disclaimer } } : {}),
    });
    return r.facts ? { ...r, notifications: outboxEntries(r.facts, notifiers) } : r;
  };
}

/** The operators' dashboard, reading the node's store, PACS and models. */
function wireDashboard(w: Wiring, wake: () => void) {
  return createDashboard({
    config: w.config,
    store: w.store,
    rules: w.rules,
    // a node without the worker role reads the manifests only
    models: () =>
      modelInfo(w.models).map((m) => ({ ...m, executionProvider: m.executionProvider ?? "none on this node" })),
    pacs: w.pacs,
    source: (job) => sourceOf(w, job),
    destination: (name) => w.destinations.get(name),
    labels: (id) => w.models.get(id)?.pkg.manifest.labels,
    volume: { ...w.config.volume, decoders: w.decoders },
    dryRun: (study) => routeStudy(w.pacs, study, w.rules),
    onRetry: wake,
    log: w.log,
  });
}

/** The webhook (under /api) and Delineate's own STOW-RS (at /dicom-web), where the configuration turns them on. */
function ingestEndpoints(w: Wiring, wake: () => void) {
  const { config, store, log } = w;
  const announce = async (uid: string) => {
    const n = await store.enqueue([uid]);
    if (n) wake();
    return n;
  };
  return {
    ...(config.ingest.webhook
      ? {
          apiRouters: {
            "/webhook": webhookRouter({
              announce,
              // the webhook takes any UID: studies it announced that are not found yet are capped
              pending: { count: () => store.pendingRoutes("pacs"), max: config.ingest.maxPendingStudies },
              log,
            }),
          },
        }
      : {}),
    ...(config.ingest.stow.enabled
      ? {
          dicomWeb: stowRouter({
            pushed: w.pushed,
            received: (uid, replaced) => store.notePushed(uid, Date.now(), replaced),
            maxBodyBytes: config.ingest.stow.maxBodyMiB * 2 ** 20,
            maxConcurrentRequests: config.ingest.stow.maxConcurrentRequests,
            log,
          }),
        }
      : {}),
  };
}

/** Facts for /healthz (never PHI): versions, models, rules, roles, the ingest cursor and the cluster. */
async function health(w: Wiring): Promise<Record<string, unknown>> {
  return {
    version: VERSION,
    models: modelInfo(w.models),
    rules: w.rules.map((r) => r.name),
    roles: w.config.roles,
    ingestCursor: (await w.store.cursor(CHANGE_FEED_CURSOR)) ?? 0,
    workerId: w.identity.workerId,
    cluster: await clusterView(w.store),
  };
}

function listen(app: Express, http: Readonly<Config["http"]>): Promise<Server> {
  return new Promise((resolve, reject) => {
    // header and request timeouts checked every second (limits.ts), not Node's defaults
    const s = createNodeServer(app, http).listen(http.port, http.host, () => resolve(s));
    s.once("error", reject);
  });
}

/** Records, every few seconds, that this node is alive and what it does (its roles, the models it runs). */
function beats(w: Wiring): Stoppable {
  return repeatEvery(
    BEAT_MS,
    () =>
      w.store.beat({
        workerId: w.identity.workerId,
        roles: w.config.roles,
        models: [...w.models.entries()].filter(([, m]) => m.inference).map(([id]) => id),
      }),
    (err) => w.log.warn("could not record this node's beat; will try again", { error: err.message }),
  );
}

/**
 * The ingest loops: the change-feed and QIDO pollers on one ingest node of the cluster at a time (the store's lead;
 * the others wait to take over); the STOW-RS quiet check and pushed-data retention sweep on every api node; the purge
 * of route jobs whose study was never found on every api or ingest node.
 */
function startIngest(w: Wiring, wake: () => void): Stoppable[] {
  const { config, store, log } = w;
  const intervalMs = config.ingest.pollIntervalSeconds * 1000;
  const feed = new OrthancChangeFeed(new OrthancRest(config.pacs), store, intervalMs, wake, log);
  const qido = new QidoPoller(
    w.pacs,
    store,
    { intervalMs, lookbackDays: config.ingest.qido.lookbackDays, quietSeconds: config.ingest.qido.quietSeconds },
    wake,
    log,
  );
  const pollers = [
    ...(config.ingest.changeFeed ? [() => feed.pollOnce()] : []),
    ...(config.ingest.qido.enabled ? [() => qido.pollOnce()] : []),
  ];
  const out: Stoppable[] = [];
  // pushed studies are queued once quiet; the check is cheap (one indexed query), safe on every api node at once
  if (config.ingest.stow.enabled && w.roles.has("api")) out.push(stowQuietCheck(w, wake), pushedRetention(w));
  // one DELETE, idempotent: safe on every node that takes announcements
  if (w.roles.has("api") || w.roles.has("ingest")) out.push(purgeAbsentStudies(w));
  if (!w.roles.has("ingest") || !pollers.length) return out;
  let leading: boolean | undefined; // logged on every change, the first answer included
  const poll = async () => {
    const lead = await store.tryLead("ingest-pollers");
    if (lead !== leading) log.info(lead ? "leading ingest polling" : "another node leads ingest polling");
    leading = lead;
    if (lead) for (const p of pollers) await p();
  };
  out.push(
    repeatEvery(intervalMs, poll, (err) => log.warn("ingest poll failed; will try again", { error: err.message })),
  );
  return out;
}

/** STOW-RS: announces, every second, each pushed study that has been quiet for `ingest.stow.quietSeconds`. */
function stowQuietCheck(w: Wiring, wake: () => void): Stoppable {
  return repeatEvery(
    1000,
    async () => {
      const queued = await w.store.queueQuietPushed(Date.now(), w.config.ingest.stow.quietSeconds * 1000);
      if (queued.length) {
        w.log.info("studies announced by STOW-RS", { studyInstanceUIDs: queued });
        wake();
      }
    },
    (err) => w.log.warn("STOW-RS quiet check failed; will try again", { error: err.message }),
  );
}

/**
 * Pushed studies past their retention (`ingest.stow.retentionHours` since anything was written to them, and no job
 * queued or running for them) are deleted, every minute.
 */
function pushedRetention(w: Wiring): Stoppable {
  const hours = w.config.ingest.stow.retentionHours;
  return repeatEvery(
    60_000,
    () => sweepPushed(w.pushed, w.store, Date.now(), hours * 3_600_000, w.log),
    (err) => w.log.warn("pushed data retention sweep failed; will try again", { error: err.message }),
  );
}

/**
 * Every ten minutes, deletes the route jobs that failed DLN_ERR_STUDY_NOT_FOUND more than
 * `ingest.absentStudyRetentionHours` ago: the record of a study that never existed (a webhook announcing any UID)
 * is not kept for ever.
 */
function purgeAbsentStudies(w: Wiring): Stoppable {
  const hours = w.config.ingest.absentStudyRetentionHours;
  return repeatEvery(
    600_000,
    async () => {
      const deleted = await w.store.deleteFailedRoutes("DLN_ERR_STUDY_NOT_FOUND", Date.now() - hours * 3_600_000);
      if (deleted) w.log.info("route jobs of studies never found deleted", { count: deleted });
    },
    (err) => w.log.warn("deleting route jobs of studies never found failed; will try again", { error: err.message }),
  );
}
