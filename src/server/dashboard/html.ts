/** HTML that is escaped unless it says otherwise: the only way a page is built, so no value reaches a page raw. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const esc = (v: unknown): string => String(v ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]!);

type Part = Html | string | number | undefined | null | false | readonly Part[];
const render = (v: Part): string =>
  v instanceof Html ? v.text : Array.isArray(v) ? v.map(render).join("") : v === false || v == null ? "" : esc(v);

/** Tagged template: interpolated values are escaped, Html values and arrays of them are kept. */
export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new Html(out);
}

export const when = (cond: unknown, part: () => Html): Html => (cond ? part() : new Html(""));

/** epoch ms as an ISO time (UTC; the page adds nothing local, so screenshots and logs agree) */
export const time = (ms: number | undefined): string =>
  ms
    ? new Date(ms)
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, "Z")
    : "—";

export function ago(ms: number | undefined, now: number): string {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} days ago`;
}

export const seconds = (s: number | undefined): string =>
  s === undefined || Number.isNaN(s) ? "—" : s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) (n /= 1024), u++;
  return `${n.toFixed(u ? 1 : 0)} ${units[u]}`;
}

export interface PageOptions {
  title: string;
  /** which menu item is current */
  nav?: "overview" | "jobs" | "failed" | "rules";
  /** the session's CSRF token (for the logout form); absent on the login page */
  csrf?: string;
  body: Html;
  /** reload the page every n seconds (pages that show a job still moving) */
  refreshSeconds?: number;
}

/** The frame of every page. Scripts and styles are same-origin files: the CSP allows nothing inline. */
export function page(o: PageOptions): string {
  const item = (key: PageOptions["nav"], href: string, label: string) =>
    html`<a href="${href}"${new Html(o.nav === key ? ' aria-current="page"' : "")}>${label}</a>`;
  return `<!doctype html>${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${when(o.refreshSeconds, () => html`<meta http-equiv="refresh" content="${o.refreshSeconds}">`)}
<title>${o.title} · Delineate</title>
<link rel="stylesheet" href="/ui/dashboard.css">
${when(o.csrf, () => html`<script src="/ui/dashboard.js" defer></script>`)}
</head>
<body>
<header>
<strong class="brand">Delineate</strong>
${when(
  o.csrf,
  () => html`<nav>${item("overview", "/", "Overview")}${item("jobs", "/jobs", "Jobs")}${item("failed", "/failed", "Failed")}${item("rules", "/rules", "Rules")}</nav>
<form method="post" action="/logout" class="logout"><input type="hidden" name="_csrf" value="${o.csrf}"><button>Log out</button></form>`,
)}
</header>
<main>
<h1>${o.title}</h1>
${o.body}
</main>
</body>
</html>`}`;
}
