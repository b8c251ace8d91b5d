import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { webhookSignature } from "../../src/notify/notifiers.js";
import type { Notification } from "../../src/notify/outbox.js";
import { startFhirServer, type TestFhirServer } from "../helpers/fhirServer.js";
import { type MllpPeer, startMllpPeer } from "../helpers/mllpPeer.js";
import { type NodeProcess, startNodeProcess } from "../helpers/nodeProcess.js";
import { startOrthanc, type TestOrthanc, waitFor } from "../helpers/orthanc.js";
import { storescu, tempDir } from "../helpers/tools.js";

const SECRET = "webhook-secret-for-the-test";

/**
 * The node, a real Orthanc, a python3-hl7 RIS and a webhook receiver: a study's result is told to all three notifiers
 * once, even when the node is killed (SIGKILL) after storing the result and before the notifications went out.
 */
describe("notifications from a running node", { concurrency: false }, () => {
  let orthanc: TestOrthanc;
  let node: NodeProcess;
  let peer: MllpPeer;
  let webhook: Server;
  let fhir: TestFhirServer;
  const hooks: { body: string; signature: string; delivery: string; answered: boolean }[] = [];
  let work: string;

  before(async () => {
    work = tempDir("notify-");
    // Orthanc 1.10 has no labels: the notifier writes the user metadata it declares
    orthanc = await startOrthanc({ extraConfig: { UserMetadata: { Delineate: 4242 } } });
    // the RIS takes the first message and never answers it, as if the node were killed while waiting for the ACK
    peer = await startMllpPeer(["silent", "AA"]);
    webhook = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        // the first delivery is taken and never answered, like the RIS's first message
        const answered = hooks.length > 0;
        hooks.push({
          body: Buffer.concat(chunks).toString("utf8"),
          signature: String(req.headers["x-delineate-signature"]),
          delivery: String(req.headers["x-delineate-delivery"]),
          answered,
        });
        if (answered) res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => webhook.listen(0, "127.0.0.1", () => r()));
    fhir = await startFhirServer({ holdFirstPosts: 1 });
    node = await startNodeProcess(orthanc, path.join(work, "data"), {
      logFile: path.join(work, "node.log"),
      configure: (c) => {
        c.notify = {
          hl7: { host: "127.0.0.1", port: peer.port, ackTimeoutMs: 120_000, receivingApplication: "RIS" },
          orthanc: { enabled: true },
          fhir: { baseUrl: fhir.baseUrl },
          webhook: { url: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook`, secret: SECRET },
          retryBaseSeconds: 0.5,
          maxRetrySeconds: 2,
        };
      },
    });
  });

  after(async () => {
    await node?.stop();
    await peer?.stop();
    webhook?.closeAllConnections();
    await new Promise((r) => webhook?.close(r));
    await fhir?.stop();
    await orthanc?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const notificationsOf = async (jobId: string) =>
    ((await (await node.api(`/api/jobs/${jobId}`)).json()) as { notifications: Notification[] }).notifications;

  it("sends each notification once after a SIGKILL between storing the result and sending", {
    timeout: 300_000,
  }, async () => {
    const p = writePhantomSeries(path.join(work, "phantom"), {
      size: 128,
      slices: 40,
      pixelSpacing: 3,
      sliceSpacing: 3,
      patientName: "Notify^Nora",
      patientID: "DLN-NOTIFY-0017",
    });
    await storescu(orthanc.dicomPort, orthanc.aet, path.join(work, "phantom"));
    const job = await waitFor(
      "the segment job done",
      async () => {
        const jobs = await node.settled(p.studyInstanceUID);
        return jobs?.[0];
      },
      240_000,
      250,
    );
    assert.equal(job.state, "done", JSON.stringify(job.error));
    // the RIS, the webhook and the FHIR server have their message and hold back their answer: the node is between
    // its stored result and its notifications (each notifier has its own loop, so they are all in flight at once)
    await waitFor(
      "the RIS, the webhook and the FHIR server to receive their message",
      async () => (peer.received().length === 1 && hooks.length === 1 && fhir.bundles.length === 1) || undefined,
      30_000,
      50,
    );
    const before = await notificationsOf(job.id);
    assert.deepEqual(before.map((n) => n.notifier).sort(), ["fhir", "hl7", "orthanc", "webhook"]);
    assert.ok(
      before.every((n) => n.notifier === "orthanc" || n.state === "sending"),
      JSON.stringify(before),
    );
    assert.ok(!("payload" in (before[0] ?? {})), "the API shows no payload (it carries the patient's identifiers)");
    await node.stop("SIGKILL");

    await node.start();
    const sent = await waitFor(
      "every notification sent",
      async () => {
        const ns = await notificationsOf(job.id);
        return ns.every((n) => n.state === "sent") ? ns : undefined;
      },
      60_000,
      250,
    );
    assert.equal(sent.length, 4);
    await new Promise((r) => setTimeout(r, 3000)); // longer than any backoff: nothing more goes out
    const ris = peer.received();
    assert.deepEqual(
      ris.map((m) => m.behaviour),
      ["silent", "AA"],
      "sent again after the restart, and once acknowledged",
    );
    assert.equal(ris[0]?.controlId, ris[1]?.controlId, "the same message (MSH-10) both times");
    assert.equal(ris[1]?.pid[0]?.[3], "DLN-NOTIFY-0017");
    assert.ok(
      (ris[1]?.obx ?? []).some((o) => o[2] === "NM" && o[6] === "mL^milliliter^UCUM"),
      "an organ volume",
    );

    assert.deepEqual(
      hooks.map((h) => h.answered),
      [false, true],
      "the webhook again after the restart, and once answered",
    );
    assert.equal(hooks[0]?.delivery, hooks[1]?.delivery, "the same delivery id both times");
    const hook = hooks[1]!;
    assert.equal(hook.signature, webhookSignature(SECRET, hook.body));
    const body = JSON.parse(hook.body);
    assert.equal(body.jobId, job.id);
    assert.equal(body.studyInstanceUID, p.studyInstanceUID);
    assert.ok(body.outputs.seg.sopInstanceUID);
    assert.ok(!hook.body.includes("DLN-NOTIFY-0017") && !hook.body.includes("Nora"), "no patient identifiers");

    const [study] = await orthanc
      .rest(`/studies?expand`)
      .then((all: { ID: string; MainDicomTags: Record<string, string> }[]) =>
        all.filter((s) => s.MainDicomTags.StudyInstanceUID === p.studyInstanceUID),
      );
    assert.ok(study);
    const marker = await fetch(`${orthanc.url}/studies/${study.ID}/metadata/Delineate`, {
      headers: { Authorization: `Basic ${Buffer.from(`${orthanc.username}:${orthanc.password}`).toString("base64")}` },
    });
    assert.equal(await marker.text(), job.id, "the study marked in Orthanc with the job");

    assert.equal(fhir.bundles.length, 2, "the FHIR transaction again after the restart (the first never answered)");
    const reports = await fhir.get("/DiagnosticReport");
    assert.equal(reports.entry?.length, 1);
    assert.equal(reports.entry[0].resource.subject.identifier.value, "DLN-NOTIFY-0017");
    assert.equal(reports.entry[0].resource.imagingStudy[0].identifier.value, `urn:oid:${p.studyInstanceUID}`);
    const observations = await fhir.get("/Observation");
    assert.equal(observations.entry?.length, reports.entry[0].resource.result.length);
    assert.ok(
      observations.entry.every(
        (e: any) => e.resource.valueQuantity.code === "mL" && e.resource.valueQuantity.value > 0,
      ),
    );

    const log = readFileSync(node.logFile, "utf8");
    assert.ok(!log.includes("DLN-NOTIFY-0017") && !log.includes("Notify^Nora"), "no PHI in the log");
  });
});
