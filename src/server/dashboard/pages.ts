import { FINAL_STATES, type Job, type StageTimings } from "../../jobs/job.js";
import type { Notification } from "../../notify/outbox.js";
import type { RuleDecision } from "../../route/routeStudy.js";
import type { RoutingRule } from "../../route/rules.js";
import type { AuditEvent } from "./audit.js";
import { ago, bytes, esc, type Html, html, seconds, time, when } from "./html.js";
import { segmentOf } from "./jobReader.js";
import { notificationsSection } from "./notifications.js";
import type { Overview } from "./overview.js";
import type { FilesVerdict } from "./ruleFiles.js";

const state = (s: string) => html`<span class="state state-${s}">${s}</span>`;
const short = (uid: string | undefined) => (uid && uid.length > 28 ? `…${uid.slice(-24)}` : (uid ?? "—"));

/** A POST button for a job action, carrying the session's CSRF token and where to come back to. */
export const actionButton = (job: Job, action: "retry" | "cancel", csrf: string, back: string) =>
  html`<form class="inline" method="post" action="/jobs/${encodeURIComponent(job.id)}/${action}"><input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="back" value="${back}"><button data-action="${action}">${action === "retry" ? "Retry" : "Cancel"}</button></form>`;

const RETRYABLE = new Set(["failed", "dead", "skipped", "cancelled"]);

/** Rows of the jobs table (the live fragment and the first render share this). */
export function jobRows(jobs: readonly Job[], now: number, actions?: { csrf: string; back: string }): Html {
  if (!jobs.length) return html`<tr><td colspan="10" class="muted">no jobs</td></tr>`;
  return html`${jobs.map((j) => {
    const seg = segmentOf(j);
    return html`<tr data-job="${j.id}" data-kind="${j.kind}" data-study="${j.studyInstanceUID}" data-state="${j.state}">
<td><a href="/jobs/${encodeURIComponent(j.id)}">${j.id.slice(0, 8)}</a></td>
<td>${j.kind}</td><td>${state(j.state)}${j.cancelRequested ? " (cancel asked)" : ""}</td>
<td class="uid" title="${j.studyInstanceUID}">${short(j.studyInstanceUID)}</td>
<td class="uid" title="${seg?.seriesInstanceUID ?? ""}">${short(seg?.seriesInstanceUID)}</td>
<td>${seg ? `${seg.modelId} ${seg.modelVersion}` : "—"}</td><td>${seg?.rule ?? "—"}</td>
<td>${j.attempts}</td><td title="${time(j.updatedAt)}">${ago(j.updatedAt, now)}</td>
<td>${j.error ? html`<span class="uid">${j.error.code}</span>` : ""}${when(
      actions,
      () =>
        html` ${when(RETRYABLE.has(j.state), () => actionButton(j, "retry", actions!.csrf, actions!.back))}${when(
          j.state === "queued" || j.state === "running",
          () => actionButton(j, "cancel", actions!.csrf, actions!.back),
        )}`,
    )}</td></tr>`;
  })}`;
}

export const JOB_TABLE_HEAD = html`<thead><tr><th>job</th><th>kind</th><th>state</th><th>study</th><th>series</th><th>model</th><th>rule</th><th>attempts</th><th>updated</th><th>error / actions</th></tr></thead>`;

export function overviewBody(o: Overview, now: number): Html {
  const status = o.alarms.length
    ? html`<div class="status alarm" data-status="alarm">Something is wrong<ul>${o.alarms.map((a) => html`<li>${a}</li>`)}</ul></div>`
    : html`<div class="status ok" data-status="ok">All well: studies are arriving, the PACS answers, no dead jobs.</div>`;
  const maxP95 = Math.max(0.001, ...o.stages.map((s) => s.p95));
  return html`${status}
<div class="cards">
<section class="card"><h2>Ingest</h2><table><thead><tr><th>source</th><th>via</th><th>last study</th></tr></thead><tbody>
${o.ingest.map((i) => html`<tr><td>${i.source === "pushed" ? "pushed to the node" : "PACS"}</td><td>${i.via.join(", ")}</td><td title="${time(i.lastStudyAt)}">${ago(i.lastStudyAt, now)}</td></tr>`)}
</tbody></table></section>
<section class="card"><h2>Queue</h2><table><thead><tr><th>model</th><th>queued</th><th>running</th></tr></thead><tbody>
${o.queue.map((q) => html`<tr><td>${q.model}</td><td>${q.queued}</td><td>${q.running}</td></tr>`)}
</tbody></table></section>
<section class="card"><h2>Jobs in the last 24 hours</h2><table><tbody>
<tr><th>done</th><td data-count="done">${o.last24h.done}</td></tr><tr><th>failed</th><td>${o.last24h.failed}</td></tr>
<tr><th>dead</th><td>${o.last24h.dead}</td></tr><tr><th>skipped</th><td>${o.last24h.skipped}</td></tr>
<tr><th>cancelled</th><td>${o.last24h.cancelled}</td></tr></tbody></table></section>
<section class="card"><h2>Time per stage (done jobs, 24 h)</h2><table><thead><tr><th>stage</th><th>jobs</th><th>median</th><th>p95</th><th></th></tr></thead><tbody>
${o.stages.length ? o.stages.map((s) => html`<tr><td>${s.stage}</td><td>${s.count}</td><td>${seconds(s.median)}</td><td>${seconds(s.p95)}</td><td><progress max="${maxP95}" value="${s.p95}"></progress></td></tr>`) : html`<tr><td colspan="5" class="muted">no finished job yet</td></tr>`}
</tbody></table></section>
<section class="card"><h2>Models</h2><table><thead><tr><th>model</th><th>version</th><th>execution provider</th></tr></thead><tbody>
${o.models.map((m) => html`<tr><td>${m.id}</td><td>${m.version}</td><td>${m.executionProvider}</td></tr>`)}
</tbody></table></section>
<section class="card"><h2>Node</h2><table><tbody>
<tr><th>PACS</th><td class="wrap">${o.pacs.reachable ? "answers" : html`<strong>does not answer</strong>: ${o.pacs.error}`} <span class="muted">(checked ${ago(o.pacs.checkedAt, now)})</span></td></tr>
<tr><th>data folder</th><td class="wrap">${o.disk ? `${bytes(o.disk.freeBytes)} free of ${bytes(o.disk.totalBytes)}` : "unknown"}</td></tr>
<tr><th>jobs in the store</th><td class="wrap">${
    Object.entries(o.counts)
      .filter(([, n]) => n)
      .map(([s, n]) => `${s} ${n}`)
      .join(", ") || "none"
  }</td></tr>
</tbody></table></section>
</div>`;
}

const STAGES: (keyof StageTimings)[] = ["route", "fetch", "volume", "inference", "encode", "store"];

/**
 * Stages with their start and duration. The store keeps each stage's seconds and when the job last changed, not
 * each stage's start; stages run one after another and the job is marked done as the last one ends, so starts are
 * counted back from then.
 */
export function timeline(job: Job): { stage: string; start: number; seconds: number }[] {
  const done = STAGES.filter((s) => job.timings?.[s] !== undefined).map((s) => ({
    stage: s,
    seconds: job.timings![s]!,
  }));
  let end = job.updatedAt;
  const out: { stage: string; start: number; seconds: number }[] = [];
  for (const s of [...done].reverse()) {
    end -= s.seconds * 1000;
    out.unshift({ stage: s.stage, start: end, seconds: s.seconds });
  }
  return out;
}

export interface JobPageData {
  job: Job;
  csrf: string;
  /** the study's other jobs (a route job's segment jobs; a segment job's route job) */
  related: Job[];
  /** every job of this series and model (all versions and destinations) and what was done to them */
  audit: { jobs: Job[]; events: AuditEvent[] };
  viewerUrl?: string;
  /** PatientName and PatientID, only when ui.showPatientIdentifiers is on */
  patient?: { name: string; id: string };
  /** the job's outbox rows (src/notify) */
  notifications?: Notification[];
  now: number;
}

export function jobBody(d: JobPageData): Html {
  const { job } = d;
  const seg = segmentOf(job);
  const warnings = job.kind === "segment" ? job.warnings : undefined;
  const routing = job.kind === "route" ? job.routing : undefined;
  const rows = timeline(job);
  const total = rows.reduce((a, r) => a + r.seconds, 0) || 1;
  const back = `/jobs/${encodeURIComponent(job.id)}`;
  const attempts = attemptsOf(d.audit.events.filter((e) => e.jobId === job.id));
  const lastWorker = attempts.at(-1)?.worker ?? "—";
  return html`
<p>${state(job.state)} ${when(RETRYABLE.has(job.state), () => actionButton(job, "retry", d.csrf, back))}${when(
    job.state === "queued" || job.state === "running",
    () => actionButton(job, "cancel", d.csrf, back),
  )} ${when(d.viewerUrl, () => html`<a href="${d.viewerUrl}" target="_blank" rel="noopener noreferrer" data-viewer>Open the study in the viewer</a>`)}</p>
${when(job.error, () => html`<div class="error" data-error><strong class="uid">${job.error!.code}</strong> at stage <em>${job.error!.stage}</em>: ${job.error!.message}${job.state === "queued" ? html` <span class="muted">(to be tried again after ${time(job.notBefore)})</span>` : ""}</div>`)}
${when(warnings?.length, () => html`<h2>Warnings</h2>${warnings!.map((w) => html`<div class="warning">${w}</div>`)}`)}
<h2>Job</h2>
<dl>
<dt>id</dt><dd class="uid">${job.id}</dd><dt>kind</dt><dd>${job.kind}</dd>
${when(d.patient, () => html`<dt>patient</dt><dd>${d.patient!.name} (${d.patient!.id})</dd>`)}
<dt>study</dt><dd class="uid">${job.studyInstanceUID}</dd><dt>read from</dt><dd>${job.source === "pushed" ? "pushed to the node" : "the PACS"}</dd>
${when(seg, () => html`<dt>series</dt><dd class="uid">${seg!.seriesInstanceUID}</dd><dt>model</dt><dd>${seg!.modelId} ${seg!.modelVersion}${seg!.executionProvider ? ` on ${seg!.executionProvider}` : ""}</dd><dt>rule</dt><dd>${seg!.rule}</dd><dt>destination</dt><dd>${seg!.destination}</dd>`)}
<dt>attempts</dt><dd>${job.attempts}</dd><dt>created</dt><dd>${time(job.createdAt)}</dd><dt>last change</dt><dd>${time(job.updatedAt)}</dd>
${when(job.cancelRequested, () => html`<dt>cancel</dt><dd>asked for; the job stops at its next stage</dd>`)}
</dl>
<h2>Timeline</h2>
<table data-timeline><thead><tr><th>stage</th><th>start</th><th>duration</th><th>attempt</th><th>worker</th><th></th></tr></thead><tbody>
<tr><td>created</td><td>${time(job.createdAt)}</td><td></td><td></td><td></td><td></td></tr>
${attempts.map((a) => html`<tr data-attempt="${a.n}"><td>attempt ${a.n}${a.outcome ? `: ${a.outcome}` : " (running)"}</td><td>${time(a.start)}</td><td>${a.end ? seconds((a.end - a.start) / 1000) : ""}</td><td>${a.n}</td><td>${a.worker}</td><td></td></tr>`)}
${rows.map((r) => html`<tr data-stage="${r.stage}"><td>${r.stage}</td><td>${time(r.start)}</td><td>${seconds(r.seconds)}</td><td>${job.attempts}</td><td>${lastWorker}</td><td><progress max="${total}" value="${r.seconds}"></progress></td></tr>`)}
<tr><td>${FINAL_STATES.includes(job.state) ? `ended ${job.state}` : job.state}</td><td>${time(job.updatedAt)}</td><td></td><td>${job.attempts}</td><td></td><td></td></tr>
</tbody></table>
<p class="muted">Attempts as the worker recorded them; stage starts of the attempt that finished are counted back from the job's last change (the store keeps each stage's duration).</p>
${when(
  seg && Object.keys(seg.uids).length,
  () => html`<h2>Outputs</h2><table data-outputs><thead><tr><th>output</th><th>series UID</th><th>SOP instance UID</th></tr></thead><tbody>
${Object.entries(seg!.uids).map(([kind, u]) => html`<tr><td>${kind}</td><td class="uid">${u?.seriesInstanceUID}</td><td class="uid">${u?.sopInstanceUID}</td></tr>`)}
</tbody></table><p class="muted">UIDs are fixed when the job is made; ${job.state === "done" ? "they are stored in the destination" : "they are stored when the job completes"}.</p>`,
)}
${notificationsSection(d.notifications ?? [])}
${when(seg?.uids.seg && job.state === "done", () => html`<h2>Preview</h2><img class="preview" data-preview alt="key slices with the result's outlines" src="/api/jobs/${encodeURIComponent(job.id)}/preview.png">`)}
${when(routing, () => routingTable(routing!))}
${when(d.related.length, () => html`<h2>${job.kind === "route" ? "Segment jobs it made" : "Other jobs of the study"}</h2><table>${JOB_TABLE_HEAD}<tbody>${jobRows(d.related, d.now)}</tbody></table>`)}
${when(seg, () => auditTable(d.audit))}`;
}

/** Each attempt's start, end, outcome and worker, from the audit trail's "attempt N started/ended" entries. */
function attemptsOf(events: readonly AuditEvent[]) {
  const out: { n: number; start: number; end?: number; outcome?: string; worker: string }[] = [];
  for (const e of events) {
    const m = /^attempt (\d+) (started|ended: (.*))$/.exec(e.action);
    if (!m) continue;
    const n = Number(m[1]);
    if (m[2] === "started") out.push({ n, start: e.at, worker: e.actor });
    else {
      const a = [...out].reverse().find((x) => x.n === n && x.end === undefined);
      if (a) Object.assign(a, { end: e.at, outcome: m[3] });
    }
  }
  return out;
}

const who = (actor: string) => (actor === "api" ? "API (token)" : actor);

function auditTable(a: JobPageData["audit"]): Html {
  // at equal times the job's current state comes after the event that led to it
  type Entry = { at: number; job: Job; what: string; who: string; last?: true };
  const entries: Entry[] = [];
  for (const j of a.jobs) {
    entries.push({ at: j.createdAt, job: j, what: "job made by routing", who: "node" });
    entries.push({
      at: j.updatedAt,
      job: j,
      what: `now ${j.state} after ${j.attempts} attempt${j.attempts === 1 ? "" : "s"}${j.state === "done" ? `; stored ${Object.keys(segmentOf(j)?.uids ?? {}).join(", ")}` : ""}${j.error ? ` (${j.error.code})` : ""}`,
      who: "node",
      last: true,
    });
  }
  for (const e of a.events) {
    const job = a.jobs.find((j) => j.id === e.jobId);
    if (job) entries.push({ at: e.at, job, what: e.action, who: who(e.actor) });
  }
  entries.sort((x, y) => x.at - y.at || Number(x.last ?? 0) - Number(y.last ?? 0));
  return html`<h2>Audit trail of this series and model</h2><table data-audit><thead><tr><th>when</th><th>job</th><th>version → destination</th><th>what</th><th>who</th></tr></thead><tbody>
${entries.map((e) => html`<tr><td>${time(e.at)}</td><td><a href="/jobs/${encodeURIComponent(e.job.id)}">${e.job.id.slice(0, 8)}</a></td><td>${segmentOf(e.job)?.modelVersion} → ${segmentOf(e.job)?.destination}</td><td>${e.what}</td><td>${e.who}</td></tr>`)}
</tbody></table><p class="muted">Every attempt (its worker, what it stored or its error code), and every retry and cancel through the API or this dashboard, as they happened.</p>`;
}

export function routingTable(decisions: readonly RuleDecision[]): Html {
  return html`<h2>Routing</h2><table data-routing><thead><tr><th>rule</th><th>models → destination</th><th>series taken</th><th>passed over</th></tr></thead><tbody>
${decisions.map(
  (d) => html`<tr data-rule="${d.rule}"><td>${d.rule}</td><td>${d.models.join(", ")} → ${d.destination}</td>
<td>${d.seriesInstanceUID ? html`<span class="uid">${d.seriesInstanceUID}</span> (${d.instanceCount} images)` : html`none: ${d.reason ?? ""}`}</td>
<td>${d.skipped.length ? html`<ul>${d.skipped.map((s) => html`<li><span class="uid">${s.seriesInstanceUID}</span>: ${s.reason}</li>`)}</ul>` : "—"}</td></tr>`,
)}
</tbody></table>`;
}

export function rulesBody(
  rules: readonly RoutingRule[],
  study: string,
  csrf: string,
  tested?: RuleDecision[] | { error: string },
): Html {
  return html`<table data-rules><thead><tr><th>rule</th><th>match</th><th>models</th><th>outputs</th><th>destination</th></tr></thead><tbody>
${rules.map((r) => html`<tr><td>${r.name}</td><td><pre>${JSON.stringify(r.match, null, 1)}</pre></td><td>${r.models.join(", ")}</td><td>${r.outputs.join(", ")}</td><td>${r.destination}</td></tr>`)}
</tbody></table>
<h2>Rule tester</h2>
<p class="muted">Which series each rule would take from a study in the PACS, and why it passes over the others (the dry run of <code>GET /api/route</code>; no job is made).</p>
<form class="filters" method="get" action="/rules"><label>StudyInstanceUID<input name="study" size="64" value="${study}" pattern="[0-9.]{1,64}" required></label><button>Test</button></form>
${when(tested && "error" in tested, () => html`<div class="error">${(tested as { error: string }).error}</div>`)}
${when(Array.isArray(tested), () => routingTable(tested as RuleDecision[]))}
<h3>Or drop the DICOM files of a study here</h3>
<form class="drop" data-files data-csrf="${csrf}" method="post" action="/rules/files" enctype="multipart/form-data">
<p>Drop files here, or <input type="file" name="files" multiple> <button>Test the files</button></p>
<p class="muted">Only the headers are read; nothing is stored and no job is made.</p>
</form>
<div data-files-result></div>`;
}

/** What the rules make of dropped files (the fragment the rules page's script shows). */
export function filesVerdictBody(v: FilesVerdict): Html {
  return html`<p data-files-summary>${v.files} file${v.files === 1 ? "" : "s"}${v.notDicom ? `, of which ${v.notDicom} not DICOM instances (left out)` : ""}.</p>
${v.studies.map((s) => html`<h4>Study <span class="uid">${s.studyInstanceUID}</span></h4>${routingTable(s.decisions)}`)}`;
}

export function loginBody(message: string | undefined, loginCsrf: string, disabled: boolean): Html {
  return html`<form class="login" method="post" action="/login">
${when(message, () => html`<p class="error" role="alert">${message}</p>`)}
${
  disabled
    ? html`<p>The dashboard is off: the node has no API token (set <code>DELINEATE_API_TOKEN</code>).</p>`
    : html`<label for="token">API token</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="_csrf" value="${loginCsrf}"><button>Log in</button>`
}
</form>`;
}

export { esc };
