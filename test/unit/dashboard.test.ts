import assert from "node:assert/strict";
import path from "node:path";
import { after, it } from "node:test";
import { inflateSync } from "node:zlib";
import request from "supertest";
import { parsePart10, writePart10 } from "../../src/dicom/dataset.js";
import { DelineateError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import type { ModelLabel } from "../../src/models/manifest.js";
import { DicomWebClient } from "../../src/pacs/dicomweb.js";
import { createApp } from "../../src/server/app.js";
import { AuditLog } from "../../src/server/dashboard/audit.js";
import { OverviewSource, quantile } from "../../src/server/dashboard/overview.js";
import { encodePng } from "../../src/server/dashboard/png.js";
import { Previewer, segToLabels } from "../../src/server/dashboard/preview.js";
import { dashboardRouter } from "../../src/server/dashboard/router.js";
import { SessionStore } from "../../src/server/dashboard/sessions.js";
import { freePort } from "../helpers/orthanc.js";
import { gappedLabelSeries, testSegmentation } from "../helpers/segFixture.js";
import { stopTestPostgres, testStore } from "../helpers/store.js";
import { tempDir } from "../helpers/tools.js";

const log = createLogger({ level: "error", silent: true });

after(stopTestPostgres);

/** A node's HTTP app with the dashboard, on a fresh store, against a PACS port where nothing listens. */
async function setUp() {
  const dir = tempDir("dash-");
  // the job store of the DELINEATE_TEST_STORE kind (SQLite by default; DELINEATE_TEST_STORE=postgres for PostgreSQL)
  const { store } = await testStore();
  const audit = new AuditLog(dir);
  const pacs = new DicomWebClient({
    url: `http://127.0.0.1:${await freePort()}`,
    dicomWebRoot: "/dicom-web",
    username: "",
    password: "",
    timeoutMs: 2000,
  });
  const overview = new OverviewSource({
    store,
    models: () => [{ id: "ct-body", version: "1.0.0", executionProvider: "cpu" }],
    ingest: [{ source: "pacs", via: ["Orthanc change feed"] }],
    dataDir: dir,
    checkPacs: async () => void (await pacs.searchStudies({ limit: "1" })),
    noStudyAlertMs: 60_000,
  });
  const previewer = new Previewer({
    source: () => pacs,
    destination: () => pacs,
    sopClassUIDs: () => undefined,
    labels: () => undefined,
    volume: {} as never,
    cacheDir: path.join(dir, "previews"),
    keySlices: 3,
    disclaimer: "",
  });
  const dashboard = dashboardRouter({
    store,
    apiToken: "t0ken",
    audit,
    overview,
    previewer,
    rules: [],
    ui: { showPatientIdentifiers: false, sessionHours: 1 },
    log,
  });
  const app = createApp({ store, apiToken: "t0ken", audit, dashboard, health: () => ({}) });
  return { store, audit, app };
}

/** logs in as a browser would: the login form's cookie and token, then the API token */
async function logIn(app: Parameters<typeof request>[0]) {
  const form = await request(app).get("/login");
  const loginCookie = form.headers["set-cookie"]![0]!.split(";")[0]!;
  const loginCsrf = /name="_csrf" value="([^"]+)"/.exec(form.text)![1]!;
  const res = await request(app)
    .post("/login")
    .set("Cookie", loginCookie)
    .type("form")
    .send({ token: "t0ken", _csrf: loginCsrf });
  assert.equal(res.status, 303);
  const set = res.headers["set-cookie"] as unknown as string[];
  const session = set.find((c) => c.startsWith("delineate_session="))!;
  assert.match(session, /HttpOnly/);
  assert.match(session, /SameSite=Strict/);
  const cookie = session.split(";")[0]!;
  const page = await request(app).get("/").set("Cookie", cookie);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!;
  return { cookie, csrf, page };
}

it("logs in only with the login form's own token and the API token", async () => {
  const { app } = await setUp();
  const form = await request(app).get("/login");
  assert.match(form.headers["content-security-policy"] ?? "", /script-src 'self'/);
  const loginCookie = form.headers["set-cookie"]![0]!.split(";")[0]!;
  const loginCsrf = /name="_csrf" value="([^"]+)"/.exec(form.text)![1]!;
  const post = (cookie: string, body: Record<string, string>) =>
    request(app).post("/login").set("Cookie", cookie).type("form").send(body);
  assert.equal((await post(loginCookie, { token: "t0ken", _csrf: "forged" })).status, 403, "a cross-site login");
  assert.equal((await post("", { token: "t0ken", _csrf: loginCsrf })).status, 403, "no login cookie");
  assert.equal((await post(loginCookie, { token: "wrong", _csrf: loginCsrf })).status, 401);
  assert.equal((await post(loginCookie, { token: "t0ken", _csrf: loginCsrf })).status, 303);
});

it("turns the overview red for dead jobs, an unreachable PACS and no recent study, and retries through the API's code", async () => {
  const { store, audit, app } = await setUp();
  const { cookie, csrf, page } = await logIn(app);
  assert.match(page.text, /data-status="alarm"/);
  assert.match(page.text, /the PACS does not answer/);
  assert.match(page.text, /no study has arrived yet/);

  await store.enqueue(["1.2.3"]);
  const job = (await store.claimNext())!;
  await store.finishWithError(job, "dead", new DelineateError("DLN_ERR_PACS_UNAVAILABLE", "gone"));
  const red = await request(app).get("/").set("Cookie", cookie);
  assert.match(red.text, /1 dead job/);
  assert.doesNotMatch(red.text, /no study has arrived/, "the study arrived just now");

  // the failed view lists it with a retry button; a retry without the right CSRF token is refused
  const failed = await request(app).get("/failed").set("Cookie", cookie);
  assert.match(failed.text, new RegExp(`data-job="${job.id}"`));
  const retry = (token: string) =>
    request(app)
      .post(`/jobs/${job.id}/retry`)
      .set("Cookie", cookie)
      .type("form")
      .send({ _csrf: token, back: "/failed" });
  assert.equal((await retry("wrong")).status, 403);
  assert.equal((await store.get(job.id))!.state, "dead");
  const ok = await retry(csrf);
  assert.deepEqual([ok.status, ok.headers.location], [303, "/failed"]);
  assert.equal((await store.get(job.id))!.state, "queued");
  // the same code path answers the API, which is recorded as such
  const again = await request(app).post(`/api/jobs/${job.id}/cancel`).set("Authorization", "Bearer t0ken");
  assert.equal(again.status, 200);
  assert.deepEqual(
    audit.events([job.id]).map((e) => [e.action, e.actor]),
    [
      ["retried", "dashboard"],
      ["cancelled", "api"],
    ],
  );
  // a back link off this node is not followed
  await store.retry(job.id);
  await store.cancel(job.id);
  const offsite = await request(app)
    .post(`/jobs/${job.id}/retry`)
    .set("Cookie", cookie)
    .type("form")
    .send({ _csrf: csrf, back: "//evil.example/" });
  assert.equal(offsite.headers.location, "/failed");
});

it("keeps the API's token and the dashboard's session apart", async () => {
  const { app } = await setUp();
  const { cookie } = await logIn(app);
  assert.equal((await request(app).get("/api/jobs").set("Cookie", cookie)).status, 401, "a session is not a token");
  assert.equal((await request(app).get("/ui/rows").set("Authorization", "Bearer t0ken")).status, 401);
  assert.equal((await request(app).get("/healthz")).status, 200);
  assert.equal((await request(app).get("/api/jobs/nope/preview.png").set("Cookie", cookie)).status, 404);
  assert.equal((await request(app).get("/api/jobs/nope/preview.png")).status, 401);
});

it("expires sessions after their time unused", () => {
  let t = 0;
  const sessions = new SessionStore(1000, () => t);
  const { id } = sessions.create();
  t = 900;
  assert.ok(sessions.touch(id), "used within the hour");
  t = 1800;
  assert.ok(sessions.touch(id), "touching pushed its expiry back");
  t = 2801;
  assert.equal(sessions.touch(id), undefined);
  assert.equal(sessions.touch("never-issued"), undefined);
});

it("encodes RGB as a PNG whose image data inflates back to the pixels", () => {
  const rgb = Uint8Array.from({ length: 5 * 3 * 3 }, (_, i) => (i * 37) % 256);
  const png = encodePng(5, 3, rgb);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20), png[24], png[25]], [5, 3, 8, 2]);
  const raw = inflateSync(png.subarray(41, 41 + png.readUInt32BE(33)));
  for (let y = 0; y < 3; y++) {
    assert.equal(raw[y * 16], 0, "filter type 0");
    assert.deepEqual([...raw.subarray(y * 16 + 1, (y + 1) * 16)], [...rgb.subarray(y * 15, (y + 1) * 15)]);
  }
  assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95), 10);
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2);
});

it("reads our own SEG (BINARY and LABELMAP, through Part 10) back to the label map the preview draws", () => {
  const { series, volume, labels } = gappedLabelSeries();
  const label = (value: number, name: string): ModelLabel => ({
    value,
    name,
    color: [200, value * 40, 10],
    category: { code: "123037004", scheme: "SCT", meaning: "Anatomical Structure" },
    type: { code: "10200004", scheme: "SCT", meaning: name },
    rtInterpretedType: "ORGAN",
  });
  const modelLabels = [label(1, "Liver"), label(2, "Lung"), label(3, "Kidney")];
  for (const type of ["BINARY", "LABELMAP"] as const) {
    const seg = testSegmentation({
      volume,
      source: series[0]!.dataset,
      labels: { dims: volume.dims, data: labels },
      segmentLabels: modelLabels,
      algorithm: { name: "test-model", version: "1" },
      disclaimer: "",
      type,
    });
    const stored = parsePart10(writePart10(seg.dataset)).dataset;
    const back = segToLabels(stored, volume, modelLabels);
    assert.deepEqual(back.labels.data, labels, type);
    assert.deepEqual(
      back.segmentLabels.map((l) => [l.value, l.name, l.color]),
      [
        [1, "Liver", [200, 40, 10]],
        [3, "Kidney", [200, 120, 10]],
      ],
    );
  }
});

it("store: jobs changed since a time, and the newest announcement per source", async () => {
  const t = await testStore();
  const { store } = t;
  assert.deepEqual(await store.lastAnnounced(), {});
  const t0 = Date.now();
  await store.enqueue(["1.1"]);
  await store.enqueue(["2.2"], undefined, "pushed");
  const last = await store.lastAnnounced();
  assert.ok(last.pacs! >= t0 && last.pushed! >= last.pacs!);
  assert.equal((await store.updatedSince(t0)).length, 2);
  assert.equal((await store.updatedSince(Date.now() + 1000)).length, 0);
  assert.equal((await store.updatedSince(t0, 1)).length, 1, "the limit holds");
  await t.dispose();
});
