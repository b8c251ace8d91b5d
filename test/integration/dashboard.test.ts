import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { inflateSync } from "node:zlib";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { truncatedPhantomStudy } from "../helpers/data.js";
import { type NodeProcess, startNodeProcess } from "../helpers/nodeProcess.js";
import { startOrthanc, type TestOrthanc, waitFor } from "../helpers/orthanc.js";
import { stopTestPostgres } from "../helpers/store.js";
import { ROOT, storescu, tempDir } from "../helpers/tools.js";

const CHROMIUM = "/usr/bin/chromium";
const PATIENTS = [
  { name: "Dashboard^Secretpatient", id: "DASH-SECRET-77" },
  { name: "Broken^Hiddenpatient", id: "DASH-SECRET-88" },
];
/** every spelling of the test patients' identifiers a page could show */
const PHI = /Secretpatient|Hiddenpatient|DASH-SECRET/;

/** The dashboard in real headless Chromium against a real node and a real Orthanc. */
describe("dashboard in a browser", {
  concurrency: false,
  skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (Debian package chromium; scripts/setup.sh installs it)`,
}, () => {
  let orthanc: TestOrthanc;
  let node: NodeProcess;
  let work: string;
  let browser: BrowserContext;
  let page: Page;
  let base: string;
  /** the HTML of every page and fragment the browser was shown, for the PHI check at the end */
  const seen: string[] = [];
  const good = { study: "", series: "" };
  let broken = "";

  const remember = async (p: Page) => {
    seen.push(await p.content());
  };
  const segmentJob = async (study: string) => (await node.jobs(study, "segment"))[0];

  before(async () => {
    work = tempDir("dashboard-");
    orthanc = await startOrthanc();
    node = await startNodeProcess(orthanc, path.join(work, "data"), {
      logFile: path.join(work, "node.log"),
      // one attempt: the broken study fails at once, and again after its retry
      jobs: { maxAttempts: 1, retryBaseSeconds: 1 },
      configure: (c) => {
        c.ui = {
          viewerUrl: `${orthanc.url}/ui/app/#/filtered-studies?StudyInstanceUID={study}`,
          noStudyAlertMinutes: 60,
        };
      },
    });
    base = `http://127.0.0.1:${node.port}`;
    browser = await chromium.launchPersistentContext(tempDir("chromium-"), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1280, height: 900 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on("response", async (r) => {
      // the live fragments the script fetches are pages too
      if (r.url().includes("/ui/rows") && r.ok()) seen.push(await r.text().catch(() => ""));
    });
  });

  after(async () => {
    await browser?.close();
    await node?.stop();
    await orthanc?.stop();
    // the throw-away PostgreSQL the node's store was made in, when DELINEATE_TEST_STORE=postgres
    await stopTestPostgres();
  });

  it("sends a browser without a session to the login page, refuses a wrong token, logs in with the right one", async () => {
    await page.goto(`${base}/`);
    assert.match(page.url(), /\/login$/);
    await page.fill("#token", "not-the-token");
    await page.click("button");
    assert.match((await page.textContent("[role=alert]")) ?? "", /Wrong token/);
    await page.fill("#token", node.token);
    await Promise.all([page.waitForURL(`${base}/`), page.click("button")]);
    assert.ok(await page.isVisible("[data-status]"));
    const [session] = (await browser.cookies(base)).filter((c) => c.name === "delineate_session");
    assert.ok(session, "a session cookie");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
    await remember(page);
  });

  it("shows a study just sent appear in the jobs list and turn done, without reloading", {
    timeout: 300_000,
  }, async () => {
    await page.goto(`${base}/jobs`);
    const dir = path.join(work, "good");
    const r = writePhantomSeries(dir, {
      size: 128,
      slices: 24,
      pixelSpacing: 3,
      sliceSpacing: 5,
      patientName: PATIENTS[0]!.name,
      patientID: PATIENTS[0]!.id,
    });
    good.study = r.studyInstanceUID;
    good.series = r.seriesInstanceUID;
    await storescu(orthanc.dicomPort, orthanc.aet, dir);
    await page.waitForSelector(`tr[data-study="${good.study}"]`, { timeout: 120_000 });
    await page.waitForSelector(`tr[data-kind="segment"][data-study="${good.study}"][data-state="done"]`, {
      timeout: 240_000,
    });
    await remember(page);
  });

  it("opens the job: timeline, outputs with their UIDs, viewer link, and the preview image", {
    timeout: 120_000,
  }, async () => {
    const job = (await segmentJob(good.study))!;
    await page.click(`tr[data-kind="segment"][data-study="${good.study}"] a`);
    await page.waitForURL(`${base}/jobs/${job.id}`);
    for (const stage of ["fetch", "volume", "inference", "encode", "store"])
      assert.ok(await page.isVisible(`[data-timeline] tr[data-stage="${stage}"]`), `timeline row ${stage}`);
    const attempt = (await page.textContent('[data-timeline] tr[data-attempt="1"]')) ?? "";
    assert.match(attempt, /attempt 1: stored seg, sr, rtstruct/);
    assert.match(attempt, /worker /);
    const outputs = (await page.textContent("[data-outputs]")) ?? "";
    assert.equal(job.kind, "segment");
    if (job.kind === "segment")
      for (const u of Object.values(job.segment.uids)) assert.ok(outputs.includes(u.sopInstanceUID));
    assert.ok((await page.getAttribute("[data-viewer]", "href"))?.includes(good.study));
    await page.waitForFunction(
      () => {
        const img = document.querySelector<HTMLImageElement>("img[data-preview]");
        return img?.complete && img.naturalWidth > 0;
      },
      undefined,
      { timeout: 90_000 },
    );
    const { w, h } = await page.$eval("img[data-preview]", (img) => ({
      w: (img as HTMLImageElement).naturalWidth,
      h: (img as HTMLImageElement).naturalHeight,
    }));
    assert.equal(h, 128, "the source's rows");
    assert.ok(w >= 128, "key slices side by side");
    assert.ok(await page.isVisible("[data-audit]"));
    await remember(page);
    mkdirSync(path.join(ROOT, "docs"), { recursive: true });
    await page.screenshot({ path: path.join(ROOT, "docs/dashboard-job.png"), fullPage: true });
  });

  it("serves the preview to the API token too, and to nobody else", async () => {
    const job = (await segmentJob(good.study))!;
    const url = `${base}/api/jobs/${job.id}/preview.png`;
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await fetch(url, { headers: { Authorization: "Bearer wrong" } })).status, 401);
    const res = await fetch(url, { headers: { Authorization: `Bearer ${node.token}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "image/png");
    const png = Buffer.from(await res.arrayBuffer());
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
    // IHDR says 8-bit RGB, and the one IDAT inflates to (1 + 3 × width) bytes per row
    const width = png.readUInt32BE(16);
    const height = png.readUInt32BE(20);
    const idatLength = png.readUInt32BE(33);
    assert.equal(png.subarray(37, 41).toString("latin1"), "IDAT");
    const raw = inflateSync(png.subarray(41, 41 + idatLength));
    assert.equal(raw.length, height * (1 + 3 * width));
    // outlines in colour: some pixel is not grey
    let coloured = 0;
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const p = y * (1 + 3 * width) + 1 + 3 * x;
        if (raw[p] !== raw[p + 1] || raw[p + 1] !== raw[p + 2]) coloured++;
      }
    assert.ok(coloured > 50, `${coloured} coloured pixels`);
  });

  it("retries a failed job from the failed view, through the same code as the API, and records who did", {
    timeout: 300_000,
  }, async () => {
    const b = truncatedPhantomStudy(path.join(work, "broken"), PATIENTS[1]!.name, PATIENTS[1]!.id);
    broken = b.studyInstanceUID;
    await storescu(orthanc.dicomPort, orthanc.aet, b.dir);
    await page.goto(`${base}/failed`);
    const row = `tr[data-kind="segment"][data-study="${broken}"][data-state="failed"]`;
    await page.waitForSelector(row, { timeout: 240_000 });
    const before = (await segmentJob(broken))!;
    assert.equal(before.state, "failed");
    await remember(page);
    await Promise.all([page.waitForURL(`${base}/failed`), page.click(`${row} button[data-action="retry"]`)]);
    const after = await waitFor(
      "the retried job to run and fail again",
      async () => {
        const j = await segmentJob(broken);
        return j && j.updatedAt > before.updatedAt && j.state === "failed" ? j : undefined;
      },
      120_000,
    );
    assert.equal(after.id, before.id);
    assert.equal(after.attempts, 1, "attempts start again after a retry");
    await page.goto(`${base}/jobs/${after.id}`);
    const audit = (await page.textContent("[data-audit]")) ?? "";
    assert.match(audit, /retried\s*dashboard/);
    // both attempts, each with its error code, the retry between them
    assert.match(audit, /attempt 1 ended: DLN_ERR_\w+[\s\S]*retried\s*dashboard[\s\S]*attempt 1 ended: DLN_ERR_\w+/);
    assert.ok(await page.isVisible("[data-error]"));
    await remember(page);
  });

  it("refuses state changes without the session or with a wrong CSRF token", async () => {
    const job = (await segmentJob(broken))!;
    const csrf = await page.getAttribute("form.logout input[name=_csrf]", "value");
    assert.ok(csrf);
    // in the browser, with its session cookie: a wrong token (header or form field) and none at all
    const statuses = await page.evaluate(
      async ({ id, csrf }) => {
        const post = (init: RequestInit) =>
          fetch(`/jobs/${id}/retry`, { method: "POST", redirect: "manual", ...init }).then((r) => r.status);
        return {
          wrongHeader: await post({ headers: { "X-CSRF-Token": `${csrf}x` } }),
          wrongField: await post({ body: new URLSearchParams({ _csrf: "nope" }) }),
          none: await post({ body: new URLSearchParams({}) }),
          files: await fetch("/rules/files", { method: "POST", body: new FormData() }).then((r) => r.status),
          right: await post({ headers: { "X-CSRF-Token": csrf } }),
        };
      },
      { id: job.id, csrf },
    );
    assert.deepEqual(statuses, { wrongHeader: 403, wrongField: 403, none: 403, files: 403, right: 200 });
    // without the session (no cookie at all): nothing answers
    const bare = (p: string, init: RequestInit = {}) => fetch(`${base}${p}`, { redirect: "manual", ...init });
    for (const p of ["/", "/jobs", "/failed", "/rules", `/jobs/${job.id}`]) {
      const res = await bare(p);
      assert.equal(res.status, 303, p);
      assert.equal(res.headers.get("location"), "/login");
    }
    assert.equal((await bare("/ui/rows?view=failed")).status, 401);
    assert.equal((await bare("/ui/dashboard.js")).status, 401);
    const forged = await bare(`/jobs/${job.id}/cancel`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: `_csrf=${csrf}`,
    });
    assert.equal(forged.status, 401, "the CSRF token alone is not a session");
    // a session id that was never issued
    assert.equal((await bare("/ui/rows", { headers: { Cookie: "delineate_session=forged" } })).status, 401);
    // the API's bearer token keeps working as before, and is not a dashboard session
    assert.equal((await node.api("/api/jobs")).status, 200);
    assert.equal(
      (await bare("/ui/rows", { headers: { Authorization: `Bearer ${node.token}` } })).status,
      401,
      "the dashboard wants its session",
    );
  });

  it("tests the rules against the study in the PACS, and against dropped files", async () => {
    await page.goto(`${base}/rules`);
    await page.fill("input[name=study]", good.study);
    await Promise.all([page.waitForURL(/\/rules\?study=/), page.click("form.filters button")]);
    const routing = (await page.textContent('[data-routing] tr[data-rule="default"]')) ?? "";
    assert.ok(routing.includes(good.series), routing);
    await remember(page);
    // the same from files dropped on the page (here chosen with the file input), one of them not DICOM
    const dir = path.join(work, "good");
    const notes = path.join(work, "notes.txt");
    writeFileSync(notes, "not a DICOM file");
    await page.setInputFiles("form[data-files] input[type=file]", [
      ...readdirSync(dir).map((f) => path.join(dir, f)),
      notes,
    ]);
    await page.click("form[data-files] button");
    await page.waitForSelector("[data-files-summary]");
    assert.match((await page.textContent("[data-files-summary]")) ?? "", /25 files, of which 1 not DICOM/);
    const fromFiles = (await page.textContent('[data-files-result] tr[data-rule="default"]')) ?? "";
    assert.ok(fromFiles.includes(good.series), fromFiles);
    assert.match(fromFiles, /24 images/);
    await remember(page);
  });

  it("shows the overview (screenshot in docs/), then logs out", async () => {
    await page.goto(`${base}/`);
    assert.equal(
      await page.getAttribute("[data-status]", "data-status"),
      "ok",
      (await page.textContent("[data-status]")) ?? "",
    );
    assert.ok(Number(await page.textContent('[data-count="done"]')) >= 2);
    await remember(page);
    await page.screenshot({ path: path.join(ROOT, "docs/dashboard-overview.png"), fullPage: true });
    await Promise.all([page.waitForURL(`${base}/login`), page.click("form.logout button")]);
    await page.goto(`${base}/jobs`);
    assert.match(page.url(), /\/login$/, "the session is gone");
  });

  it("shows the patient's name and ID on a job page only when ui.showPatientIdentifiers is on", {
    timeout: 120_000,
  }, async () => {
    // the same node, restarted with the setting on (sessions are in memory: the restart logs the browser out)
    const configFile = path.join(work, `config-${node.port}.json`);
    const config = JSON.parse(readFileSync(configFile, "utf8"));
    config.ui.showPatientIdentifiers = true;
    writeFileSync(configFile, JSON.stringify(config));
    await node.stop();
    await node.start();
    const job = (await segmentJob(good.study))!;
    await page.goto(`${base}/jobs/${job.id}`);
    assert.match(page.url(), /\/login$/, "the restart ended the session");
    await page.fill("#token", node.token);
    await Promise.all([page.waitForURL(`${base}/`), page.click("button")]);
    await page.goto(`${base}/jobs/${job.id}`);
    const text = (await page.textContent("dl")) ?? "";
    assert.ok(text.includes(PATIENTS[0]!.name) && text.includes(PATIENTS[0]!.id), text);
    // (this page is not among those checked for identifiers below: it is the one allowed to show them)
    await Promise.all([page.waitForURL(`${base}/login`), page.click("form.logout button")]);
  });

  it("turns the overview red when the PACS stops answering (screenshot in docs/)", { timeout: 120_000 }, async () => {
    await orthanc.stop();
    await page.goto(`${base}/login`);
    await page.fill("#token", node.token);
    await Promise.all([page.waitForURL(`${base}/`), page.click("button")]);
    // the PACS check is cached for 15 s; the page reloads itself every 10 s
    await page.waitForSelector('[data-status="alarm"]', { timeout: 60_000 });
    assert.match((await page.textContent("[data-status]")) ?? "", /the PACS does not answer/);
    await remember(page);
    await page.screenshot({ path: path.join(ROOT, "docs/dashboard-alarm.png"), fullPage: true });
  });

  it("showed no test patient's name or ID on any page, and logged none", () => {
    assert.ok(seen.length >= 8, `${seen.length} pages`);
    for (const html of seen) assert.doesNotMatch(html, PHI);
    assert.doesNotMatch(readFileSync(node.logFile, "utf8"), PHI);
  });
});
