import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createLogger } from "../../src/log.js";
import { buildFhirBundle, fhirNotifier, validateFhir } from "../../src/notify/fhir.js";
import { NotificationSender } from "../../src/notify/sender.js";
import { startFhirServer, type TestFhirServer } from "../helpers/fhirServer.js";
import { waitFor } from "../helpers/orthanc.js";
import { completedSegmentJob } from "../helpers/outboxFixtures.js";
import { type TestStore, testStore } from "../helpers/store.js";

const log = createLogger({ level: "error", silent: true });

/** FHIR R4 notifications: validated bundles, stored by a Medplum FHIR server, read back. */
describe("FHIR R4 notifications", { concurrency: false }, () => {
  let fhir: TestFhirServer;
  let t: TestStore;
  before(async () => {
    fhir = await startFhirServer();
    t = await testStore();
  });
  after(async () => {
    await fhir?.stop();
    await t?.dispose();
  });

  it("POSTs a transaction bundle that validates; the server stores the DiagnosticReport and its Observations", {
    timeout: 60_000,
  }, async () => {
    const job = await completedSegmentJob(t.store, "1.2.840.99.17.20", ["fhir"]);
    const sender = new NotificationSender(
      t.store,
      new Map([["fhir", fhirNotifier({ baseUrl: fhir.baseUrl, timeoutMs: 10_000 })]]),
      { maxAttempts: 3, retryBaseSeconds: 0.2, maxRetrySeconds: 1, idlePollMs: 50 },
      log,
    );
    sender.start();
    try {
      await waitFor(
        "the notification sent",
        async () => (await t.store.notifications(job.id))[0]?.state === "sent" || undefined,
        30_000,
        50,
      );
    } finally {
      await sender.stop();
    }
    assert.equal(fhir.bundles.length, 1);
    for (const b of fhir.bundles) await validateFhir(b as Record<string, unknown>);

    const reports = await fhir.get("/DiagnosticReport");
    assert.equal(reports.entry?.length, 1);
    const report = reports.entry[0].resource;
    assert.equal(report.status, "preliminary");
    assert.equal(report.code.coding[0].code, "18748-4");
    assert.equal(report.subject.identifier.value, "NOTIFY-17");
    assert.equal(report.imagingStudy[0].identifier.value, "urn:oid:1.2.840.99.17.20");
    assert.ok(report.identifier.some((i: { value: string }) => i.value === "ACC-0042"));
    assert.match(report.conclusion, /NOT FOR CLINICAL USE/);
    assert.equal(report.result.length, 2);
    const volumes = new Map<string, number>();
    for (const ref of report.result as { reference: string }[]) {
      assert.match(ref.reference, /^Observation\//, "the transaction resolved the urn:uuid references");
      const obs = await fhir.get(`/${ref.reference}`);
      assert.equal(obs.status, "preliminary");
      assert.equal(obs.valueQuantity.system, "http://unitsofmeasure.org");
      assert.equal(obs.valueQuantity.code, "mL");
      volumes.set(obs.bodySite.coding[0].code, obs.valueQuantity.value);
    }
    assert.deepEqual([...volumes].sort(), [
      ["10200004", 1523.25],
      ["78961009", 187.5],
    ]);
  });

  it("a bundle sent again (an answer lost) creates nothing twice", async () => {
    const [n] = await t.store.notifications((await t.store.list({ kind: "segment" }))[0]!.id);
    assert.ok(n);
    const res = await fetch(fhir.baseUrl, {
      method: "POST",
      headers: { "content-type": "application/fhir+json" },
      body: JSON.stringify(buildFhirBundle(n)),
    });
    assert.ok(res.ok);
    assert.equal((await fhir.get("/DiagnosticReport")).entry.length, 1);
    assert.equal((await fhir.get("/Observation")).entry.length, 2);
  });

  it("refuses to send what does not validate", async () => {
    const [n] = await t.store.notifications((await t.store.list({ kind: "segment" }))[0]!.id);
    const bundle = buildFhirBundle(n!) as { entry: { resource: Record<string, unknown> }[] };
    // a required element missing, and a quantity that is no number
    delete bundle.entry[0]!.resource.status;
    (bundle.entry[1]!.resource.valueQuantity as Record<string, unknown>).value = "a lot";
    await assert.rejects(validateFhir(bundle), { code: "DLN_ERR_NOTIFY_INVALID" });
  });
});
