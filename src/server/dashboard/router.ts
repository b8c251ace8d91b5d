import { randomBytes } from "node:crypto";
import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { isDicomUid } from "../../dicom/uids.js";
import { asDelineateError, DelineateError } from "../../errors.js";
import { JOB_KINDS, JOB_STATES, type Job, type JobKind, type JobState } from "../../jobs/job.js";
import type { Logger } from "../../log.js";
import { boundaryOf } from "../../pacs/multipart.js";
import type { RuleDecision } from "../../route/routeStudy.js";
import type { RoutingRule } from "../../route/rules.js";
import { type Actor, cancelJob, NO_SUCH_JOB, retryJob } from "../jobActions.js";
import { CSS, JS } from "./assets.js";
import type { AuditLog } from "./audit.js";
import { type Html, html, type PageOptions, page } from "./html.js";
import { type DashboardStore, segmentOf } from "./jobReader.js";
import type { OverviewSource } from "./overview.js";
import {
  filesVerdictBody,
  JOB_TABLE_HEAD,
  type JobPageData,
  jobBody,
  jobRows,
  loginBody,
  overviewBody,
  rulesBody,
} from "./pages.js";
import type { Previewer } from "./preview.js";
import { rulesForFiles } from "./ruleFiles.js";
import { parseCookies, type Session, SessionStore, sameSecret } from "./sessions.js";

/** The `ui` section of the configuration. */
export interface UiSettings {
  showPatientIdentifiers: boolean;
  /** e.g. "http://pacs:8042/ui/app/#/filtered-studies?StudyInstanceUID={study}"; {study} and {series} are replaced */
  viewerUrl?: string;
  sessionHours: number;
}

export interface DashboardDeps {
  store: DashboardStore;
  apiToken: string;
  audit: AuditLog;
  onRetry?: () => void;
  overview: OverviewSource;
  previewer: Previewer;
  rules: readonly RoutingRule[];
  dryRun?: (studyInstanceUID: string) => Promise<RuleDecision[]>;
  /** PatientName and PatientID of a study; asked only when ui.showPatientIdentifiers is on */
  patient?: (job: Job) => Promise<{ name: string; id: string } | undefined>;
  ui: UiSettings;
  log: Logger;
  now?: () => number;
}

const SESSION_COOKIE = "delineate_session";
/** files dropped on the rule tester: one series' worth, read a part at a time */
const RULE_FILES_MAX_BYTES = 2 * 2 ** 30;
const LOGIN_COOKIE = "delineate_login";
const STATES = new Set<string>(JOB_STATES);
const KINDS = new Set<string>(JOB_KINDS);

/** What a page may load: only this node's own script, style and images; no framing; forms post here only. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

function secureHeaders(res: Response): void {
  res.set({
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
  });
}

const cookie = (req: Request, name: string, value: string, path: string, maxAgeSeconds: number) =>
  `${name}=${value}; Path=${path}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${req.secure ? "; Secure" : ""}`;

/** where a form's `back` field may send the browser: a path on this node, nothing else */
const safeBack = (v: unknown, fallback: string) =>
  typeof v === "string" && /^\/(?![/\\])[\w\-./?=&%]*$/.test(v) ? v : fallback;

const q = (req: Request, key: string): string => (typeof req.query[key] === "string" ? (req.query[key] as string) : "");

/** What every area of the dashboard shares: the router its routes go on, the sessions, the guards, the page frame. */
interface Dashboard {
  deps: DashboardDeps;
  router: express.Router;
  sessions: SessionStore;
  now: () => number;
  /** a posted form's fields: small and flat */
  form: RequestHandler;
  sessionOf: (req: Request) => Session | undefined;
  /** pages send a browser without a session to the login page; everything else gets 401 */
  requireSession: (kind: "page" | "data") => RequestHandler;
  /** the synchroniser token: a form field or the X-CSRF-Token header, compared in constant time */
  checkCsrf: RequestHandler;
  /** a page in the dashboard's frame, with the session's CSRF token for its logout form */
  send: (res: Response, status: number, title: string, body: Html, extra?: Partial<PageOptions>) => void;
}

/**
 * The operators' dashboard, mounted at the node's root: a login with the API token, server-side sessions
 * (HttpOnly, SameSite=Strict cookie), a CSRF synchroniser token on every state-changing request, and the pages.
 * Server-rendered HTML with one small script (live tables): nothing to build, nothing fetched from the internet.
 * Its routes are named one by one, so /api, /healthz, /metrics and /dicom-web pass through untouched.
 */
export function dashboardRouter(deps: DashboardDeps): express.Router {
  const d = dashboardContext(deps);
  assetRoutes(d);
  sessionRoutes(d);
  overviewRoutes(d);
  jobListRoutes(d);
  jobPageRoutes(d);
  jobActionRoutes(d);
  ruleRoutes(d);
  previewRoutes(d);
  return d.router;
}

function dashboardContext(deps: DashboardDeps): Dashboard {
  const sessions = new SessionStore(deps.ui.sessionHours * 3600 * 1000, deps.now);
  const sessionOf = (req: Request): Session | undefined =>
    sessions.touch(parseCookies(req.get("cookie")).get(SESSION_COOKIE));
  const requireSession =
    (kind: "page" | "data") =>
    (req: Request, res: Response, next: NextFunction): void => {
      secureHeaders(res);
      const session = deps.apiToken ? sessionOf(req) : undefined;
      if (!session) {
        if (kind === "page") res.redirect(303, "/login");
        else res.status(401).type("text/plain").send("log in first");
        return;
      }
      res.locals.session = session;
      next();
    };
  const checkCsrf = (req: Request, res: Response, next: NextFunction): void => {
    const session = res.locals.session as Session;
    const sent = (req.body as Record<string, unknown> | undefined)?._csrf ?? req.get("x-csrf-token");
    if (typeof sent !== "string" || !sameSecret(sent, session.csrf)) {
      deps.log.warn("dashboard request refused: missing or wrong CSRF token", { path: req.path });
      res.status(403).type("text/plain").send("missing or wrong CSRF token");
      return;
    }
    next();
  };
  const send = (res: Response, status: number, title: string, body: Html, extra: Partial<PageOptions> = {}) => {
    res
      .status(status)
      .type("html")
      .send(page({ title, body, csrf: (res.locals.session as Session | undefined)?.csrf, ...extra }));
  };
  return {
    deps,
    router: express.Router(),
    sessions,
    now: () => (deps.now ?? Date.now)(),
    form: express.urlencoded({ extended: false, limit: "8kb", parameterLimit: 20 }),
    sessionOf,
    requireSession,
    checkCsrf,
    send,
  };
}

/** The stylesheet (open to all: the login page needs it) and the script (live tables; a session's). */
function assetRoutes(d: Dashboard): void {
  d.router.get("/ui/dashboard.css", (_req, res) => {
    res.set("Cache-Control", "public, max-age=300").type("text/css").send(CSS);
  });
  d.router.get("/ui/dashboard.js", d.requireSession("data"), (_req, res) => {
    res.type("text/javascript").send(JS);
  });
}

/**
 * Login and logout. The login form has its own CSRF token (a short-lived cookie echoed in the form), so another
 * site cannot log a browser into this node with a token of its choosing.
 */
function sessionRoutes(d: Dashboard): void {
  const { deps, router } = d;
  const loginPage = (res: Response, status: number, message?: string) => {
    secureHeaders(res);
    const token = randomBytes(24).toString("base64url");
    res.set("Set-Cookie", cookie(res.req, LOGIN_COOKIE, token, "/login", 600));
    res
      .status(status)
      .type("html")
      .send(page({ title: "Log in", body: loginBody(message, token, !deps.apiToken) }));
  };
  router.get("/login", (req, res) => {
    if (deps.apiToken && d.sessionOf(req)) res.redirect(303, "/");
    else loginPage(res, 200);
  });
  router.post("/login", d.form, (req, res) => {
    const body = req.body as Record<string, unknown>;
    const expected = parseCookies(req.get("cookie")).get(LOGIN_COOKIE);
    if (!expected || typeof body._csrf !== "string" || !sameSecret(body._csrf, expected)) {
      loginPage(res, 403, "The login form expired; try again.");
      return;
    }
    if (!deps.apiToken || typeof body.token !== "string" || !sameSecret(body.token, deps.apiToken)) {
      deps.log.warn("dashboard login refused: wrong token", { ip: req.ip });
      loginPage(res, 401, "Wrong token.");
      return;
    }
    const { id } = d.sessions.create();
    deps.log.info("dashboard login", { ip: req.ip });
    res.set("Set-Cookie", [
      cookie(req, SESSION_COOKIE, id, "/", deps.ui.sessionHours * 3600),
      cookie(req, LOGIN_COOKIE, "", "/login", 0),
    ]);
    res.redirect(303, "/");
  });
  router.post("/logout", d.requireSession("data"), d.form, d.checkCsrf, (req, res) => {
    d.sessions.destroy(parseCookies(req.get("cookie")).get(SESSION_COOKIE));
    res.set("Set-Cookie", cookie(req, SESSION_COOKIE, "", "/", 0));
    res.redirect(303, "/login");
  });
}

function overviewRoutes(d: Dashboard): void {
  d.router.get("/", d.requireSession("page"), async (_req, res) => {
    const overview = await d.deps.overview.get();
    d.send(res, 200, "Overview", overviewBody(overview, d.now()), { nav: "overview", refreshSeconds: 10 });
  });
}

/** the jobs list's filters, from the query; unknown states and kinds are ignored rather than refused */
async function listJobs(store: DashboardStore, req: Request): Promise<Job[]> {
  const state = STATES.has(q(req, "state")) ? (q(req, "state") as JobState) : undefined;
  const kind = KINDS.has(q(req, "kind")) ? (q(req, "kind") as JobKind) : undefined;
  const from = Date.parse(q(req, "from"));
  const to = Date.parse(q(req, "to"));
  const model = q(req, "model");
  const rule = q(req, "rule");
  const candidates = await (Number.isFinite(from)
    ? store.updatedSince(from, 5000) // a job made after `from` has changed since then too
    : store.list({ ...(state ? { state } : {}), ...(kind ? { kind } : {}) }, 1000));
  return candidates
    .filter(
      (j) =>
        (!state || j.state === state) &&
        (!kind || j.kind === kind) &&
        (!model || segmentOf(j)?.modelId === model) &&
        (!rule || segmentOf(j)?.rule === rule) &&
        (!Number.isFinite(from) || j.createdAt >= from) &&
        (!Number.isFinite(to) || j.createdAt < to + 24 * 3600 * 1000),
    )
    .sort((a, b) => b.createdAt - a.createdAt)
    .slice(0, 200);
}

/** what needs a hand: failed, dead and cancelled jobs, and queued ones waiting to be tried again after an error */
async function failedJobs(store: DashboardStore): Promise<Job[]> {
  const ended = await Promise.all(
    (["failed", "dead", "cancelled"] as const).map((state) => store.list({ state }, 500)),
  );
  const waiting = (await store.list({ state: "queued" }, 1000)).filter((j) => j.error);
  return [...ended.flat(), ...waiting].sort((a, b) => b.updatedAt - a.updatedAt);
}

const liveTable = (src: string, rows: ReturnType<typeof jobRows>) =>
  html`<p class="muted" data-live-stamp>live</p><table data-jobs>${JOB_TABLE_HEAD}<tbody data-live="${src}">${rows}</tbody></table>`;

/** the query's string parameters, but `leaveOut`, as a query string */
const queryString = (req: Request, leaveOut?: string): string =>
  new URLSearchParams(
    Object.entries(req.query).filter((e): e is [string, string] => typeof e[1] === "string" && e[0] !== leaveOut),
  ).toString();

/** the jobs list's filter form, showing the filters of the query */
function jobFilters(req: Request, rules: readonly RoutingRule[]): Html {
  const models = [...new Set(rules.flatMap((r) => r.models))];
  const select = (name: string, options: readonly string[]) =>
    html`<label>${name}<select name="${name}"><option value="">any</option>${options.map(
      (o) => html`<option${o === q(req, name) ? html` selected` : ""}>${o}</option>`,
    )}</select></label>`;
  return html`<form class="filters" method="get" action="/jobs">${select("state", JOB_STATES)}${select("kind", JOB_KINDS)}${select("model", models)}${select(
    "rule",
    rules.map((r) => r.name),
  )}
<label>made from<input type="date" name="from" value="${q(req, "from")}"></label><label>to<input type="date" name="to" value="${q(req, "to")}"></label><button>Filter</button></form>`;
}

/** The jobs list and the failed jobs, each a live table, and the rows the script fetches to refresh them. */
function jobListRoutes(d: Dashboard): void {
  const { deps, router } = d;
  router.get("/jobs", d.requireSession("page"), async (req, res) => {
    const query = queryString(req);
    const session = res.locals.session as Session;
    const back = `/jobs${query ? `?${query}` : ""}`;
    const rows = jobRows(await listJobs(deps.store, req), d.now(), { csrf: session.csrf, back });
    d.send(res, 200, "Jobs", html`${jobFilters(req, deps.rules)}\n${liveTable(`/ui/rows?view=jobs&${query}`, rows)}`, {
      nav: "jobs",
    });
  });
  router.get("/failed", d.requireSession("page"), async (_req, res) => {
    const session = res.locals.session as Session;
    const rows = jobRows(await failedJobs(deps.store), d.now(), { csrf: session.csrf, back: "/failed" });
    d.send(
      res,
      200,
      "Failed jobs",
      html`<p class="muted">Failed, dead and cancelled jobs, and jobs waiting to be tried again after an error. Retry and cancel do what <code>POST /api/jobs/:id/retry</code> and <code>/cancel</code> do.</p>
${liveTable("/ui/rows?view=failed", rows)}`,
      { nav: "failed" },
    );
  });
  router.get("/ui/rows", d.requireSession("data"), async (req, res) => {
    const session = res.locals.session as Session;
    const failed = q(req, "view") === "failed";
    const params = queryString(req, "view");
    const back = failed ? "/failed" : `/jobs${params ? `?${params}` : ""}`;
    const jobs = await (failed ? failedJobs(deps.store) : listJobs(deps.store, req));
    res.type("html").send(jobRows(jobs, d.now(), { csrf: session.csrf, back }).text);
  });
}

const FINAL_STATES: readonly JobState[] = ["done", "failed", "dead", "skipped", "cancelled"];

/** What a job's page shows besides the job: its study's other jobs, the audit trail, the viewer link, the patient. */
async function jobPageData(d: Dashboard, job: Job, csrf: string): Promise<JobPageData> {
  const { deps } = d;
  const studyJobs = await deps.store.list({ studyInstanceUID: job.studyInstanceUID }, 1000);
  const related = studyJobs.filter((j) => j.id !== job.id && (job.kind === "route" || j.kind === "route"));
  const target = segmentOf(job);
  const sameSeriesModel = target
    ? studyJobs.filter(
        (j) => segmentOf(j)?.seriesInstanceUID === target.seriesInstanceUID && segmentOf(j)?.modelId === target.modelId,
      )
    : [];
  const viewerUrl = deps.ui.viewerUrl
    ?.replaceAll("{study}", encodeURIComponent(job.studyInstanceUID))
    .replaceAll("{series}", encodeURIComponent(target?.seriesInstanceUID ?? ""));
  let patient: { name: string; id: string } | undefined;
  if (deps.ui.showPatientIdentifiers && deps.patient) {
    // The names are a courtesy: without them the page still says all it must, and a PACS that does not answer
    // is reported on the overview (its PACS check), not on every job page.
    patient = await deps.patient(job).catch(() => undefined);
  }
  return {
    job,
    csrf,
    related,
    audit: {
      jobs: sameSeriesModel,
      events: deps.audit.events([...new Set([job.id, ...sameSeriesModel.map((j) => j.id)])]),
    },
    ...(viewerUrl ? { viewerUrl } : {}),
    ...(patient ? { patient } : {}),
    notifications: await deps.store.notifications(job.id),
    now: d.now(),
  };
}

/** A job's page; it reloads itself while the job is not final. */
function jobPageRoutes(d: Dashboard): void {
  d.router.get("/jobs/:id", d.requireSession("page"), async (req, res) => {
    const job = await d.deps.store.get(req.params.id as string);
    if (!job) {
      d.send(res, 404, "No such job", html`<p>There is no job ${req.params.id}.</p>`);
      return;
    }
    const data = await jobPageData(d, job, (res.locals.session as Session).csrf);
    const final = FINAL_STATES.includes(job.state);
    d.send(res, 200, `${job.kind === "route" ? "Route" : "Segment"} job ${job.id.slice(0, 8)}`, jobBody(data), {
      nav: "jobs",
      ...(final ? {} : { refreshSeconds: 3 }),
    });
  });
}

/**
 * A retry or cancel from a form or the script: the API's own function, recorded as done by the dashboard. The
 * script (X-CSRF-Token) gets the API's JSON; a form is sent back to where it came from, or shown why not.
 */
function jobAction(d: Dashboard, act: (id: string, actor: Actor) => Promise<{ status: number; body: unknown }>) {
  return [
    d.requireSession("data"),
    d.form,
    d.checkCsrf,
    async (req: Request, res: Response) => {
      const { status, body } = await act(req.params.id as string, "dashboard");
      if (req.get("x-csrf-token")) {
        res.status(status).json(body);
        return;
      }
      const back = safeBack((req.body as Record<string, unknown>).back, "/failed");
      if (status < 300 || status === 202) res.redirect(303, back);
      else
        d.send(
          res,
          status,
          "Not done",
          html`<p class="error">${(body as { message?: string }).message ?? "refused"}</p><p><a href="${back}">Back</a></p>`,
        );
    },
  ] as const;
}

function jobActionRoutes(d: Dashboard): void {
  const { deps } = d;
  const actionDeps = { store: deps.store, audit: deps.audit, ...(deps.onRetry ? { onRetry: deps.onRetry } : {}) };
  d.router.post("/jobs/:id/retry", ...jobAction(d, (id, actor) => retryJob(actionDeps, id, actor)));
  d.router.post("/jobs/:id/cancel", ...jobAction(d, (id, actor) => cancelJob(actionDeps, id, actor)));
}

/** the rule tester's dry run of one study: each rule's decision, or why there is none */
async function testStudy(deps: DashboardDeps, study: string): Promise<RuleDecision[] | { error: string }> {
  if (!isDicomUid(study)) return { error: "not a valid StudyInstanceUID (PS3.5 §9.1: digits and dots, at most 64)" };
  if (!deps.dryRun) return { error: "this node has no dry run" };
  return deps.dryRun(study).catch((err: unknown) => {
    // shown on the page as its code and message, which is all the operator can act on; nothing is rethrown
    const e = asDelineateError(err);
    return { error: `${e.code}: ${e.message}` };
  });
}

/** The rules page and its tester: a StudyInstanceUID in the query, or the files of a study dropped on the page. */
function ruleRoutes(d: Dashboard): void {
  d.router.get("/rules", d.requireSession("page"), async (req, res) => {
    const study = q(req, "study");
    const tested = study ? await testStudy(d.deps, study) : undefined;
    d.send(res, 200, "Rules", rulesBody(d.deps.rules, study, (res.locals.session as Session).csrf, tested), {
      nav: "rules",
    });
  });
  // The rule tester for files: the script posts the dropped files (multipart/form-data) with the CSRF header.
  d.router.post("/rules/files", d.requireSession("data"), d.checkCsrf, async (req, res) => {
    const contentType = req.get("content-type") ?? "";
    const boundary = /^multipart\/form-data\b/i.test(contentType) ? boundaryOf(contentType) : undefined;
    if (!boundary) {
      res.status(400).type("text/plain").send(`expected the files as multipart/form-data with a boundary`);
      return;
    }
    try {
      const verdict = await rulesForFiles(req, boundary, d.deps.rules, RULE_FILES_MAX_BYTES);
      res.type("html").send(filesVerdictBody(verdict).text);
    } catch (err) {
      // answered to the script that sent the files, as a status and the message it shows the operator
      const status = err instanceof DelineateError && err.code === "DLN_ERR_STOW_TOO_LARGE" ? 413 : 400;
      res
        .status(status)
        .type("text/plain")
        .send((err as Error).message);
    }
  });
}

/** The preview, for the dashboard (session) and for anything else (the API token), e.g. a report or a chat bot. */
function previewRoutes(d: Dashboard): void {
  const { deps } = d;
  d.router.get("/api/jobs/:id/preview.png", async (req, res) => {
    const bearer = /^Bearer +(\S+) *$/i.exec(req.get("authorization") ?? "")?.[1]; // the scheme in any case (RFC 9110 §11.1)
    const allowed = deps.apiToken && (bearer ? sameSecret(bearer, deps.apiToken) : d.sessionOf(req) !== undefined);
    if (!allowed) {
      res
        .status(401)
        .json({ code: "DLN_ERR_UNAUTHORIZED", message: "missing or wrong bearer token (or dashboard session)" });
      return;
    }
    const job = await deps.store.get(req.params.id);
    if (!job) {
      res.status(404).json(NO_SUCH_JOB);
      return;
    }
    try {
      const png = await deps.previewer.png(job);
      res.set("Cache-Control", "private, max-age=3600").type("image/png").send(png);
    } catch (thrown) {
      // logged and answered with its code and message: the caller sees why there is no picture
      const err = asDelineateError(thrown);
      const status = err.code === "DLN_ERR_OUTPUT_INVALID" ? 409 : err.code === "DLN_ERR_INTERNAL" ? 500 : 502;
      deps.log.warn("preview failed", { jobId: job.id, code: err.code, error: err.message });
      res.status(status).json({ code: err.code, message: status === 500 ? "internal error" : err.message });
    }
  });
}
