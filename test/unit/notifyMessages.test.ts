import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigSchema } from "../../src/config/schema.js";
import { buildOruR01, checkAck, controlId } from "../../src/notify/hl7.js";
import { MllpReader, mllpFrame } from "../../src/notify/mllp.js";
import { webhookBody, webhookSignature } from "../../src/notify/notifiers.js";
import type { Notification, ResultFacts } from "../../src/notify/outbox.js";

const facts: ResultFacts = {
  jobId: "job-1",
  studyInstanceUID: "1.2.3",
  seriesInstanceUID: "1.2.3.4",
  accessionNumber: "A|1^2",
  patientId: "P~1",
  patientName: "O'Neil^Ann&Marie",
  patientBirthDate: "19800101",
  patientSex: "F",
  studyDate: "20260102",
  modality: "CT",
  modelId: "ct-body",
  modelVersion: "1.0.0",
  outputs: { seg: { seriesInstanceUID: "9.1", sopInstanceUID: "9.2" } },
  organs: [{ label: 1, name: "liver", code: { code: "10200004", scheme: "SCT", meaning: "Liver" }, volumeMl: 1500 }],
  disclaimer: "NOT FOR CLINICAL USE\\really",
  completedAt: Date.UTC(2026, 0, 2, 3, 4, 5),
};
const n = { id: "0123456789abcdef-0123-4567-89ab-cdef01234567", payload: facts } as Notification;

describe("notification messages", () => {
  it("escapes HL7 delimiters in every value, so no value can shift a field", () => {
    const msg = buildOruR01(n, facts, {
      sendingApplication: "DELINEATE",
      sendingFacility: "",
      receivingApplication: "RIS",
      receivingFacility: "",
    });
    const segs = msg.split("\r").filter(Boolean);
    const pid = segs.find((s) => s.startsWith("PID|"))!.split("|");
    assert.equal(pid[3], "P\\R\\1");
    assert.equal(pid[5], "O'Neil^Ann\\T\\Marie");
    const obr = segs.find((s) => s.startsWith("OBR|"))!.split("|");
    assert.equal(obr[3], "A\\F\\1\\S\\2");
    assert.equal(obr[25], "P");
    assert.ok(
      segs.every((s) => /^[A-Z][A-Z0-9]{2}\|/.test(s)),
      "one segment per line",
    );
    assert.equal(segs.filter((s) => s.startsWith("OBX|")).length, 3);
    assert.match(msg, /NOT FOR CLINICAL USE\\E\\really/);
  });

  it("reads ACKs: AA and CA taken, AE retried, AR refused, another message's ACK not taken", () => {
    const id = controlId(n);
    assert.doesNotThrow(() => checkAck(`MSH|^~\\&|RIS\rMSA|AA|${id}\r`, id, "ris"));
    assert.doesNotThrow(() => checkAck(`MSH|^~\\&|RIS\rMSA|CA|${id}\r`, id, "ris"));
    assert.throws(() => checkAck(`MSH|^~\\&|RIS\rMSA|AE|${id}|busy\r`, id, "ris"), {
      code: "DLN_ERR_NOTIFY_UNAVAILABLE",
    });
    assert.throws(() => checkAck(`MSH|^~\\&|RIS\rMSA|AR|${id}\r`, id, "ris"), { code: "DLN_ERR_NOTIFY_REJECTED" });
    assert.throws(() => checkAck(`MSH|^~\\&|RIS\rMSA|AA|other\r`, id, "ris"), { code: "DLN_ERR_NOTIFY_UNAVAILABLE" });
  });

  it("frames MLLP and reads frames that arrive in pieces or together", () => {
    const bytes = Buffer.concat([mllpFrame("one"), mllpFrame("two")]);
    const reader = new MllpReader();
    assert.deepEqual(reader.push(bytes.subarray(0, 3)), []);
    assert.deepEqual(reader.push(bytes.subarray(3, 9)), ["one"]);
    assert.deepEqual(reader.push(bytes.subarray(9)), ["two"]);
  });

  it("signs the webhook body, which carries no patient identifiers", () => {
    const body = webhookBody(n);
    assert.ok(!body.includes("P~1") && !body.includes("Neil"));
    assert.match(webhookSignature("s3cret-s3cret-s3cret", body), /^sha256=[0-9a-f]{64}$/);
  });

  it("keeps every notifier off unless configured, and refuses a short webhook secret", () => {
    const base = {
      pacs: { url: "http://127.0.0.1:8042" },
      dataDir: "/tmp/x",
      http: { port: 0 },
      ingest: {},
      model: { dir: "models", id: "ct-body" },
      inference: {},
      outputs: { seriesNumber: 9001, seriesDescription: "x", deviceSerialNumber: "x" },
      jobs: {},
      log: {},
    };
    const c = ConfigSchema.parse(base);
    assert.deepEqual(
      [c.notify.hl7, c.notify.fhir, c.notify.orthanc, c.notify.webhook],
      [undefined, undefined, undefined, undefined],
    );
    assert.equal(
      ConfigSchema.safeParse({ ...base, notify: { webhook: { url: "http://h/x", secret: "short" } } }).success,
      false,
    );
    const hl7 = ConfigSchema.parse({ ...base, notify: { hl7: { host: "ris", port: 2575 } } }).notify.hl7;
    assert.equal(hl7?.ackTimeoutMs, 30_000);
  });
});
