import type { Config } from "../config/schema.js";
import { fhirNotifier } from "./fhir.js";
import { readPeerCa } from "./mllp.js";
import { hl7Notifier, type Notifier, orthancNotifier, webhookNotifier } from "./notifiers.js";

/** The notifiers the configuration turns on, by name; empty when `notify` configures none. */
export function configuredNotifiers(config: Readonly<Config>): Map<string, Notifier> {
  const n = config.notify;
  const out: Notifier[] = [];
  if (n.hl7)
    out.push(
      hl7Notifier(
        {
          host: n.hl7.host,
          port: n.hl7.port,
          ackTimeoutMs: n.hl7.ackTimeoutMs,
          ...(n.hl7.tls
            ? {
                tls: {
                  ...(n.hl7.tls.caFile ? { ca: readPeerCa(n.hl7.tls.caFile) } : {}),
                  ...(n.hl7.tls.servername ? { servername: n.hl7.tls.servername } : {}),
                },
              }
            : {}),
        },
        n.hl7,
      ),
    );
  if (n.fhir) out.push(fhirNotifier(n.fhir));
  if (n.orthanc?.enabled) out.push(orthancNotifier(config.pacs, n.orthanc));
  if (n.webhook) out.push(webhookNotifier(n.webhook));
  return new Map(out.map((x) => [x.name, x]));
}
