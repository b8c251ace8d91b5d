import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { type NodeProcess, startNodeProcess } from "../helpers/nodeProcess.js";
import { freePort, type TestOrthanc, waitFor } from "../helpers/orthanc.js";
import { logEntries, type PacsRig, startPacsRig } from "../helpers/pacsRig.js";
import { stopTestPostgres } from "../helpers/store.js";
import { ROOT, storescu } from "../helpers/tools.js";

/** Webhook ingest: Orthanc's Lua script (orthanc/delineate-webhook.lua) posts each stable study to the node. */
describe("webhook ingest from Orthanc's Lua script", { concurrency: false }, () => {
  let orthanc: TestOrthanc;
  let node: NodeProcess | undefined;
  let segCount: PacsRig["segCount"];
  let work: string;
  let port: number;
  const token = "webhook-test-token";

  const send = async (name: string) => {
    const s = writePhantomSeries(path.join(work, name), {
      size: 64,
      slices: 10,
      pixelSpacing: 6,
      sliceSpacing: 4,
      patientName: `Hook^${name}`,
      patientID: `HOOK-${name}`,
    });
    await storescu(orthanc.dicomPort, orthanc.aet, path.join(work, name));
    return s.studyInstanceUID;
  };
  const done = (n: NodeProcess, study: string) => waitFor(`the job for ${study}`, () => n.settled(study), 120_000, 250);

  before(async () => {
    port = await freePort();
    ({ work, orthanc, segCount } = await startPacsRig("webhook-", {
      luaScripts: [path.join(ROOT, "orthanc", "delineate-webhook.lua")],
      env: { DELINEATE_WEBHOOK_URL: `http://127.0.0.1:${port}/api/webhook/stable-study`, DELINEATE_API_TOKEN: token },
    }));
  });

  after(async () => {
    await node?.stop();
    await orthanc?.stop();
    await stopTestPostgres();
  });

  it("processes a study announced by the webhook alone (change feed off)", { timeout: 180_000 }, async () => {
    node = await startNodeProcess(orthanc, path.join(work, "data"), {
      logFile: path.join(work, "a.log"),
      ingest: { changeFeed: false, webhook: true },
      port,
      token,
    });
    const study = await send("alone");
    const [job] = await done(node, study);
    assert.equal(job?.state, "done");
    assert.equal(await segCount(study), 1);
    const log = logEntries(node.logFile);
    assert.ok(
      log.some((e) => e.message === "study announced by webhook" && e.studyInstanceUID === study && e.queued === true),
    );
    assert.ok(!log.some((e) => e.message === "studies announced by the change feed"), "the change feed was off");
  });

  it("makes one job and one SEG for a study announced by both the feed and the webhook", {
    timeout: 180_000,
  }, async () => {
    await node!.stop();
    node = await startNodeProcess(orthanc, path.join(work, "data"), {
      logFile: path.join(work, "b.log"),
      ingest: { changeFeed: true, webhook: true },
      port,
      token,
    });
    const study = await send("twice");
    await done(node, study);
    const log = await waitFor(
      "both announcements",
      async () => {
        const l = logEntries(node!.logFile);
        const byHook = l.some((e) => e.message === "study announced by webhook" && e.studyInstanceUID === study);
        const byFeed = l.some(
          (e) =>
            e.message === "studies announced by the change feed" && (e.studyInstanceUIDs as string[]).includes(study),
        );
        return byHook && byFeed ? l : undefined;
      },
      60_000,
    );
    // The second announcement came while the route job was queued (no effect) or after it was done (routed again,
    // making no new job): either way routing made one segment job in all, and there is one SEG.
    const routed = log
      .filter((e) => e.message === "job done" && e.kind === "route" && e.studyInstanceUID === study)
      .map((e) => e.newJobs as number);
    assert.ok(routed.length >= 1);
    assert.equal(
      routed.reduce((a, b) => a + b, 0),
      1,
      `segment jobs made by each routing: ${routed.join(", ")}`,
    );
    assert.equal((await node.jobs(study, "segment")).length, 1);
    assert.equal((await node.jobs(study, "route")).length, 1);
    assert.equal(await segCount(study), 1);
  });

  it("refuses webhook calls without the token, with a bad body, or too large", async () => {
    const url = `http://127.0.0.1:${port}/api/webhook/stable-study`;
    const post = (body: string, auth?: string) =>
      fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...(auth ? { Authorization: auth } : {}) },
        body,
      });
    assert.equal((await post('{"StudyInstanceUID":"1.2.3"}')).status, 401);
    assert.equal((await post('{"StudyInstanceUID":"1.2.3"}', "Bearer wrong")).status, 401);
    assert.equal((await post('{"StudyInstanceUID":"not a uid"}', `Bearer ${token}`)).status, 400);
    assert.equal(
      (await post(JSON.stringify({ StudyInstanceUID: "1.2.3", pad: "x".repeat(20_000) }), `Bearer ${token}`)).status,
      413,
    );
  });

  it("logged none of the patients' names or IDs", () => {
    for (const file of ["a.log", "b.log"])
      assert.doesNotMatch(readFileSync(path.join(work, file), "utf8"), /Hook\^|HOOK-/, file);
  });
});
