import { createHmac } from "node:crypto";
import { fetch } from "undici";
import { DelineateError } from "../errors.js";
import { isTransientStatus, type PacsConnection, pacsFetch } from "../pacs/http.js";
import { buildOruR01, checkAck, controlId, type Hl7Identity } from "./hl7.js";
import { type MllpPeer, mllpExchange } from "./mllp.js";
import type { Notification, NotifierName } from "./outbox.js";

/** Sends one notification; resolves once the peer has it. @throws DelineateError NOTIFY_* (retryable or not). */
export interface Notifier {
  name: NotifierName;
  send(n: Notification): Promise<void>;
}

/** HL7 v2 ORU^R01 over MLLP, waiting for the ACK. */
export function hl7Notifier(peer: MllpPeer, identity: Hl7Identity): Notifier {
  const where = `${peer.host}:${peer.port}`;
  return {
    name: "hl7",
    async send(n) {
      const reply = await mllpExchange(peer, buildOruR01(n, n.payload, identity));
      checkAck(reply, controlId(n), where);
    },
  };
}

/** The error for a peer's HTTP answer that was not 2xx: 5xx/429/408 are worth another try, other 4xx not. */
function httpError(what: string, status: number): DelineateError {
  return new DelineateError(
    isTransientStatus(status) ? "DLN_ERR_NOTIFY_UNAVAILABLE" : "DLN_ERR_NOTIFY_REJECTED",
    `${what} answered HTTP ${status}`,
    { status },
  );
}

function unreachable(what: string, err: unknown): DelineateError {
  return new DelineateError(
    "DLN_ERR_NOTIFY_UNAVAILABLE",
    `${what} could not be reached: ${(err as Error).message}`,
    {},
    { cause: err },
  );
}

/** The webhook's body: the job, the study, the outputs and the volumes; no patient identifiers. */
export function webhookBody(n: Notification): string {
  const f = n.payload;
  return JSON.stringify({
    event: "delineate.result",
    notificationId: n.id,
    jobId: f.jobId,
    studyInstanceUID: f.studyInstanceUID,
    seriesInstanceUID: f.seriesInstanceUID,
    model: { id: f.modelId, version: f.modelVersion },
    outputs: f.outputs,
    organs: f.organs.map((o) => ({ label: o.label, name: o.name, code: o.code, volumeMl: o.volumeMl })),
    completedAt: new Date(f.completedAt).toISOString(),
  });
}

/** The signature header's value for a body: hex HMAC-SHA256 with the shared secret. */
export function webhookSignature(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * A JSON POST signed with an HMAC-SHA256 of the exact body bytes in X-Delineate-Signature; X-Delineate-Delivery
 * carries the notification id, the same on every retry, so a receiver can drop one it has already had.
 */
export function webhookNotifier(cfg: { url: string; secret: string; timeoutMs: number }): Notifier {
  return {
    name: "webhook",
    async send(n) {
      const body = webhookBody(n);
      let res: Awaited<ReturnType<typeof fetch>>;
      try {
        res = await fetch(cfg.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-delineate-signature": webhookSignature(cfg.secret, body),
            "x-delineate-delivery": n.id,
          },
          body,
          signal: AbortSignal.timeout(cfg.timeoutMs),
        });
        await res.arrayBuffer();
      } catch (err) {
        throw unreachable("the webhook", err);
      }
      if (!res.ok) throw httpError("the webhook", res.status);
    },
  };
}

/**
 * Marks the study in Orthanc: the label `label` where /system says HasLabels (Orthanc 1.12 and later), else the
 * user metadata `metadata` (Orthanc 1.10/1.11; its name must be declared in Orthanc's UserMetadata), set to the
 * job id. Both PUTs are idempotent, so a retry does no harm.
 */
export function orthancNotifier(conn: PacsConnection, marker: { label: string; metadata: string }): Notifier {
  const http = pacsFetch(conn);
  const call = async (method: string, path: string, body?: string) => {
    let res: Awaited<ReturnType<typeof http>>;
    try {
      res = await http(`${conn.url}${path}`, { method, ...(body !== undefined ? { body: Buffer.from(body) } : {}) });
    } catch (err) {
      throw unreachable("Orthanc", err);
    }
    const text = await res.text();
    if (!res.ok) throw httpError(`Orthanc ${method} ${path.split("/")[1]}`, res.status);
    return text;
  };
  return {
    name: "orthanc",
    async send(n) {
      const system = JSON.parse(await call("GET", "/system")) as { HasLabels?: boolean };
      const found = JSON.parse(await call("POST", "/tools/lookup", n.payload.studyInstanceUID)) as {
        Type: string;
        ID: string;
      }[];
      const study = found.find((r) => r.Type === "Study");
      if (!study)
        throw new DelineateError(
          "DLN_ERR_NOTIFY_REJECTED",
          `Orthanc does not have study ${n.payload.studyInstanceUID}`,
          { studyInstanceUID: n.payload.studyInstanceUID },
        );
      if (system.HasLabels) await call("PUT", `/studies/${study.ID}/labels/${marker.label}`, "");
      else await call("PUT", `/studies/${study.ID}/metadata/${marker.metadata}`, n.payload.jobId);
    },
  };
}
