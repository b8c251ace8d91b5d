import type { CodedConcept } from "../dicom/codes.js";
import type { ErrorCode } from "../errors.js";
import type { OutputUids } from "../jobs/job.js";
import type { OutputKind } from "../route/rules.js";

/** The notifiers a node can have; each is off unless its section of `notify` is configured. */
export type NotifierName = "hl7" | "fhir" | "orthanc" | "webhook";
export const NOTIFIER_NAMES: readonly NotifierName[] = ["hl7", "fhir", "orthanc", "webhook"];

/** One measured organ of a result: what the SR reports, repeated for the RIS. */
export interface OrganVolume {
  /** the model's label value */
  label: number;
  name: string;
  /** the label's property type code (SNOMED CT, as in the SEG and the SR) */
  code: CodedConcept;
  volumeMl: number;
}

/**
 * What every notifier needs of one stored result, fixed when the job is marked done, so a notification sent after a
 * restart says exactly what the result said. Carries the patient's identifiers, since telling the RIS whose study it
 * is is the point; it is never logged, and the API and the dashboard show a notification's state, not its payload.
 */
export interface ResultFacts {
  jobId: string;
  studyInstanceUID: string;
  seriesInstanceUID: string;
  accessionNumber: string;
  patientId: string;
  patientName: string;
  patientBirthDate: string;
  patientSex: string;
  studyDate: string;
  modality: string;
  modelId: string;
  modelVersion: string;
  /** the stored outputs' UIDs */
  outputs: Partial<Record<OutputKind, OutputUids>>;
  organs: OrganVolume[];
  disclaimer: string;
  /** epoch ms the result was stored */
  completedAt: number;
}

/** A notification to write with the job's completion: one per configured notifier. */
export interface OutboxEntry {
  notifier: NotifierName;
  /**
   * Which result it is about (the outputs' SOP Instance UIDs): with the job and the notifier, the unique key, so a
   * job completed again with the same outputs makes no second notification.
   */
  resultKey: string;
  payload: ResultFacts;
}

/** pending → sending → sent; or back to pending (retry with backoff), or failed (refused, or out of attempts). */
export type NotificationState = "pending" | "sending" | "sent" | "failed";

export interface Notification {
  id: string;
  jobId: string;
  notifier: NotifierName;
  resultKey: string;
  payload: ResultFacts;
  state: NotificationState;
  attempts: number;
  /** epoch ms before which it is not sent (again) */
  notBefore: number;
  lastError?: { code: ErrorCode; message: string };
  createdAt: number;
  updatedAt: number;
  sentAt?: number;
}

/** How one attempt to send ended. */
export type NotificationOutcome =
  | { state: "sent" }
  | { state: "pending"; retryAt: number; error: { code: ErrorCode; message: string } }
  | { state: "failed"; error: { code: ErrorCode; message: string } };

/** A notification as the API and the dashboard show it: its state, never its payload (which may carry PHI). */
export function notificationSummary(n: Notification) {
  const { payload: _payload, ...rest } = n;
  return rest;
}

/**
 * An error message with the payload's patient identifiers (ID, name and each of its components, birth date) cut
 * out. A peer's own words go into the message (an HL7 AE/AR's MSA-3 text, say), and a RIS may well quote the patient
 * back; the message goes to the log, the API and the dashboard, which never show who the patient is.
 */
export function withoutPatient(message: string, facts: ResultFacts): string {
  const name = facts.patientName ?? "";
  const values = [facts.patientId, name, facts.patientBirthDate, ...name.split(/[\^=]/)]
    .map((v) => (v ?? "").trim())
    .filter((v) => v.length >= 2)
    .sort((a, b) => b.length - a.length);
  if (!values.length) return message;
  // one pass, longest first, so a cut-out value's marker is never cut into again
  const any = new RegExp(values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "gi");
  return message.replace(any, "[redacted]");
}
