import { readFileSync } from "node:fs";
import { Agent, fetch as undiciFetch } from "undici";
import { DelineateError } from "../errors.js";

export interface PacsConnection {
  /** Server base URL (Orthanc's REST root); DICOMweb is `${url}${dicomWebRoot}`. */
  url: string;
  dicomWebRoot: string;
  username: string;
  password: string;
  timeoutMs: number;
  /** PEM file of the CA(s) to trust for an https PACS, besides the system's */
  caFile?: string;
}

export type PacsResponse = Awaited<ReturnType<typeof undiciFetch>>;
export type PacsFetch = (
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: Uint8Array },
) => Promise<PacsResponse>;

/** The Authorization header for a connection, or undefined without credentials. */
export function basicAuth(conn: Pick<PacsConnection, "username" | "password">): string | undefined {
  return conn.username ? `Basic ${Buffer.from(`${conn.username}:${conn.password}`).toString("base64")}` : undefined;
}

/**
 * fetch for one PACS connection: its timeout, its credentials, and its CA when one is configured. undici's own
 * fetch and Agent, because Node's global fetch cannot be given a CA per connection.
 * @throws DelineateError DLN_ERR_CONFIG_INVALID when the CA file cannot be read.
 */
export function pacsFetch(conn: PacsConnection): PacsFetch {
  let ca: string | undefined;
  if (conn.caFile) {
    try {
      ca = readFileSync(conn.caFile, "utf8");
    } catch (err) {
      throw new DelineateError(
        "DLN_ERR_CONFIG_INVALID",
        `cannot read the PACS CA file ${conn.caFile}: ${(err as Error).message}`,
        { file: conn.caFile },
      );
    }
  }
  const dispatcher = new Agent({ connect: ca ? { ca } : {} });
  const auth = basicAuth(conn);
  return (url, init) =>
    undiciFetch(url, {
      method: init.method ?? "GET",
      headers: { ...init.headers, ...(auth ? { Authorization: auth } : {}) },
      ...(init.body ? { body: init.body } : {}),
      signal: AbortSignal.timeout(conn.timeoutMs),
      dispatcher,
    });
}
