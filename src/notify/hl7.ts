import { DelineateError } from "../errors.js";
import type { Notification, ResultFacts } from "./outbox.js";

export interface Hl7Identity {
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
}

/** HL7 v2 escapes for the delimiters MSH-1/2 declare (|^~\&), so a name with a caret cannot shift a field. */
function esc(value: string): string {
  return value
    .replace(/\\/g, "\\E\\")
    .replace(/\|/g, "\\F\\")
    .replace(/\^/g, "\\S\\")
    .replace(/~/g, "\\R\\")
    .replace(/&/g, "\\T\\")
    .replace(/[\r\n]+/g, " ");
}

/** A DICOM PN (Family^Given^Middle^Prefix^Suffix) as an HL7 XPN: the same component order, escaped per component. */
function xpn(dicomName: string): string {
  return dicomName.split("^").map(esc).join("^");
}

function hl7Time(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

/** The message control ID (MSH-10): the notification's id, so a RIS that gets a retry can tell it has it already. */
export function controlId(n: Pick<Notification, "id">): string {
  return n.id.replace(/-/g, "").slice(0, 20);
}

/**
 * An ORU^R01 (v2.5.1): PID from the source images, ORC/OBR with the accession number as placer and filler order
 * number, the Study Instance UID in an OBX (v2 has no field for it; DCM 110180 "Study Instance UID"), one NM OBX
 * per measured organ (its SNOMED CT code, the volume in mL in UCUM), and a TX OBX with the summary and the
 * disclaimer. Result status P: the results are preliminary until a radiologist reads them.
 */
export function buildOruR01(n: Pick<Notification, "id">, f: ResultFacts, id: Hl7Identity, now = Date.now()): string {
  const accession = esc(f.accessionNumber);
  const observed = f.studyDate ? esc(f.studyDate) : hl7Time(f.completedAt);
  const service = "DELINEATE-VOL^Organ volumes (Delineate)^L";
  const segments = [
    [
      "MSH",
      "^~\\&",
      esc(id.sendingApplication),
      esc(id.sendingFacility),
      esc(id.receivingApplication),
      esc(id.receivingFacility),
      hl7Time(now),
      "",
      "ORU^R01^ORU_R01",
      controlId(n),
      "P",
      "2.5.1",
    ].join("|"),
    [
      "PID",
      "1",
      "",
      `${esc(f.patientId)}`,
      "",
      xpn(f.patientName),
      "",
      esc(f.patientBirthDate),
      esc(f.patientSex),
    ].join("|"),
    ["ORC", "RE", accession, accession, "", "CM"].join("|"),
    [
      "OBR",
      "1",
      accession,
      accession,
      service,
      "",
      "",
      observed,
      ...Array(14).fill(""),
      hl7Time(f.completedAt),
      "",
      esc(f.modality),
      "P",
    ].join("|"),
  ];
  let setId = 0;
  const obx = (type: string, code: string, sub: string, value: string, units = "") =>
    segments.push(["OBX", String(++setId), type, code, sub, value, units, "", "", "", "", "P"].join("|"));
  obx("ST", "110180^Study Instance UID^DCM", "", esc(f.studyInstanceUID));
  for (const o of f.organs) {
    obx(
      "NM",
      `${esc(o.code.code)}^${esc(`${o.code.meaning} volume`)}^${o.code.scheme === "SCT" ? "SCT" : esc(o.code.scheme)}`,
      String(o.label),
      String(o.volumeMl),
      "mL^milliliter^UCUM",
    );
  }
  obx("TX", "18782-3^Radiology Study observation (narrative)^LN", "", [summary(f), f.disclaimer].map(esc).join("~"));
  return `${segments.join("\r")}\r`;
}

/** One line a reader of the worklist sees. */
export function summary(f: ResultFacts): string {
  const organs = f.organs.map((o) => `${o.name} ${o.volumeMl} mL`).join(", ");
  return `Delineate ${f.modelId} ${f.modelVersion}: ${organs || "no structure found"}. Series ${f.seriesInstanceUID}.`;
}

/**
 * What the RIS said, from its ACK's MSA segment: AA/CA taken; AE/CE an error (sent again later); AR/CR refused.
 * @throws DelineateError NOTIFY_UNAVAILABLE for AE, a reply that is no ACK, or an ACK for another message;
 * NOTIFY_REJECTED for AR.
 */
export function checkAck(reply: string, expectedControlId: string, where: string): void {
  const msa = reply
    .split(/\r\n?|\n/)
    .find((s) => s.startsWith("MSA|"))
    ?.split("|");
  const code = msa?.[1] ?? "";
  const text = (msa?.[3] ?? "").slice(0, 200);
  if (!msa || (msa[2] ?? "") !== expectedControlId) {
    throw new DelineateError(
      "DLN_ERR_NOTIFY_UNAVAILABLE",
      `HL7 peer ${where} answered without an MSA for message ${expectedControlId}`,
      { peer: where },
    );
  }
  if (code === "AA" || code === "CA") return;
  if (code === "AR" || code === "CR")
    throw new DelineateError("DLN_ERR_NOTIFY_REJECTED", `HL7 peer ${where} rejected the message (${code}) ${text}`, {
      peer: where,
    });
  throw new DelineateError(
    "DLN_ERR_NOTIFY_UNAVAILABLE",
    `HL7 peer ${where} answered ${code || "an unknown code"} ${text}`,
    { peer: where },
  );
}
