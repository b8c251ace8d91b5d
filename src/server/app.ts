import { createHash, timingSafeEqual } from "node:crypto";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Registry } from "prom-client";
import { isDicomUid } from "../dicom/uids.js";
import { asDelineateError } from "../errors.js";
import type { JobStore } from "../jobs/jobStore.js";
import { createLogger, type Logger } from "../log.js";
import { notificationSummary } from "../notify/outbox.js";
import type { RuleDecision } from "../route/routeStudy.js";
import type { AuditLog } from "./dashboard/audit.js";
import { errorHandler, notFound } from "./errorHandler.js";
import { cancelJob, NO_SUCH_JOB, retryJob } from "./jobActions.js";
import { encodeCursor, parseJobsQuery } from "./jobsQuery.js";

export interface AppDeps {
  store: JobStore;
  apiToken: string;
  /** what each routing rule would make of a study (series taken, others passed over and why), without making a job */
  dryRun?: (studyInstanceUID: string) => Promise<RuleDecision[]>;
  /** Prometheus registry served at /metrics (open, like /healthz: it holds no patient data) */
  metrics?: Registry;
  /** called after a job is queued again through the API (wakes the worker) */
  onRetry?: () => void;
  /** Delineate's own DICOMweb (STOW-RS), mounted at /dicom-web behind the token, when enabled */
  dicomWeb?: express.Router;
  /** extra routers mounted under /api, behind the token (the webhook, when enabled) */
  apiRouters?: Record<string, express.Router>;
  /** API and dashboard retries and cancels are recorded here */
  audit?: AuditLog;
  /** the operators' dashboard (src/server/dashboard), mounted at / */
  dashboard?: express.Router;
  /** false on a node without the api role: only /healthz and /metrics are served (no API, no dashboard) */
  serveApi?: boolean;
  /** where a request that fails on the node's side is logged (its message, never the request's content) */
  log?: Logger;
  /** facts for /healthz: never PHI */
  health: () => Promise<Record<string, unknown>> | Record<string, unknown>;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Bearer-token check in constant time (both sides hashed to equal length first). */
export function requireToken(token: string) {
  const expected = digest(token);
  return (req: Request, res: Response, next: NextFunction) => {
    if (!token) {
      res.status(401).json({ code: "DLN_ERR_UNAUTHORIZED", message: "the API is disabled: set DELINEATE_API_TOKEN" });
      return;
    }
    const m = /^Bearer +(\S+) *$/i.exec(req.get("authorization") ?? ""); // the scheme is case-insensitive (RFC 9110 §11.1)
    if (!m?.[1] || !timingSafeEqual(digest(m[1]), expected)) {
      res.status(401).json({ code: "DLN_ERR_UNAUTHORIZED", message: "missing or wrong bearer token" });
      return;
    }
    next();
  };
}

/** The HTTP API: /healthz open, /api/* behind the token. */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.get("/healthz", async (_req, res) => {
    res.json({ status: "ok", jobs: await deps.store.counts(), ...(await deps.health()) });
  });
  if (deps.metrics) {
    const registry = deps.metrics;
    app.get("/metrics", async (_req, res) => {
      res.type(registry.contentType).send(await registry.metrics());
    });
  }
  // a node without the api role still answers unknown paths and errors in the one shape
  if (deps.serveApi !== false) mountApi(app, deps);
  app.use(notFound);
  app.use(errorHandler(deps.log ?? createLogger({ level: "error" })));
  return app;
}

/** The dashboard, /api/* behind the token, and /dicom-web (STOW-RS) behind it too. */
function mountApi(app: express.Express, deps: AppDeps): void {
  // the dashboard (/, its pages, and GET /api/jobs/:id/preview.png with the token or a session), before the token gate
  if (deps.dashboard) app.use(deps.dashboard);
  const api = express.Router();
  api.use(requireToken(deps.apiToken));
  api.get("/jobs", async (req, res) => {
    const q = parseJobsQuery(req.query as Record<string, unknown>); // a bad query is thrown: 400 { code, message }
    const page = await deps.store.listPage(q.filter, q.limit + 1, q.after);
    const last = page.length > q.limit ? page[q.limit - 1] : undefined;
    if (last) {
      const next = new URLSearchParams(req.query as Record<string, string>);
      next.set("cursor", encodeCursor(last));
      res.set("Link", `</api/jobs?${next.toString()}>; rel="next"`);
    }
    res.json(page.slice(0, q.limit));
  });
  api.get("/jobs/:id", async (req, res) => {
    const job = await deps.store.get(req.params.id);
    // the notifications' states (src/notify), never their payloads
    if (job) res.json({ ...job, notifications: (await deps.store.notifications(job.id)).map(notificationSummary) });
    else res.status(404).json(NO_SUCH_JOB);
  });
  api.get("/route", async (req, res) => {
    const study = typeof req.query.study === "string" ? req.query.study : "";
    if (!deps.dryRun || !isDicomUid(study)) {
      res.status(400).json({ code: "DLN_ERR_UID_INVALID", message: "expected ?study=<StudyInstanceUID>" });
      return;
    }
    try {
      res.json({ studyInstanceUID: study, rules: await deps.dryRun(study) });
    } catch (thrown) {
      const err = asDelineateError(thrown);
      res.status(502).json({ code: err.code, message: err.message });
    }
  });
  // the dashboard's buttons go through the same two functions (jobActions.ts)
  api.post("/jobs/:id/retry", async (req, res) => {
    const { status, body } = await retryJob(deps, req.params.id, "api");
    res.status(status).json(body);
  });
  api.post("/jobs/:id/cancel", async (req, res) => {
    const { status, body } = await cancelJob(deps, req.params.id, "api");
    res.status(status).json(body);
  });
  for (const [mount, router] of Object.entries(deps.apiRouters ?? {})) api.use(mount, router);
  app.use("/api", api);
  if (deps.dicomWeb) app.use("/dicom-web", requireToken(deps.apiToken), deps.dicomWeb);
}
