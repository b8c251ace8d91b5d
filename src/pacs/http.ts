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
export interface PacsRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
}
export type PacsFetch = (url: string, init: PacsRequest) => Promise<PacsResponse>;

/** The Authorization header for a connection, or undefined without credentials. */
export function basicAuth(conn: Pick<PacsConnection, "username" | "password">): string | undefined {
  return conn.username ? `Basic ${Buffer.from(`${conn.username}:${conn.password}`).toString("base64")}` : undefined;
}

/**
 * fetch for one PACS connection: its timeout, its credentials, and its CA when one is configured. undici's own
 * fetch and Agent, because Node's global fetch cannot be given a CA per connection. The timeout covers the body
 * too: the signal stays armed while it is read. Raw transport, no error rule: use PacsHttp for requests a job needs.
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
        { cause: err },
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

/**
 * The one rule for which PACS answers are worth waiting out: 408 (request timeout), 429 (too many requests) and
 * every 5xx say "not now"; any other 4xx says "never", so retrying it only delays the failure.
 */
export function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/** The error for a PACS that answered `status` (not 2xx): DLN_ERR_PACS_UNAVAILABLE when transient, else REJECTED. */
function statusError(status: number, message: string, context: Record<string, string | number>): DelineateError {
  return new DelineateError(isTransientStatus(status) ? "DLN_ERR_PACS_UNAVAILABLE" : "DLN_ERR_PACS_REJECTED", message, {
    ...context,
    status,
  });
}

/** A successful answer, its body read in full. */
export interface PacsBody {
  status: number;
  /** the Content-Type header, "" when absent */
  contentType: string;
  body: Uint8Array;
}

/** A successful answer, its body still to be read. */
export interface PacsStream {
  status: number;
  /** the Content-Type header, "" when absent */
  contentType: string;
  /** the body as it arrives */
  chunks: AsyncIterable<Uint8Array>;
}

/**
 * HTTP to one PACS endpoint (a DICOMweb root, Orthanc's REST root) with one error rule, body included:
 * - the request or its body fails (connection refused or reset, TLS refused, the timeout, a body cut short):
 *   DLN_ERR_PACS_UNAVAILABLE with the underlying error as cause; a job retries it;
 * - the PACS answers a status that is not 2xx: DLN_ERR_PACS_UNAVAILABLE or DLN_ERR_PACS_REJECTED (isTransientStatus),
 *   with the status in the context;
 * - a 2xx JSON body that does not parse: DLN_ERR_PACS_MALFORMED with the parser's error as cause.
 * The body is read inside the same handling as the request, so nothing the network does escapes as a plain error.
 */
export class PacsHttp {
  private readonly base: string;
  private readonly fetch: PacsFetch;

  /**
   * @param base the endpoint's URL; request paths are appended to it
   * @param name what messages call the server ("PACS", "Orthanc")
   * @throws DelineateError DLN_ERR_CONFIG_INVALID when the connection's CA file cannot be read.
   */
  constructor(
    conn: PacsConnection,
    base: string,
    private readonly name = "PACS",
  ) {
    this.base = base.replace(/\/+$/, "");
    this.fetch = pacsFetch(conn);
  }

  /** The whole body of a 2xx answer. @throws DelineateError DLN_ERR_PACS_UNAVAILABLE or DLN_ERR_PACS_REJECTED */
  async bytes(path: string, init: PacsRequest = {}): Promise<PacsBody> {
    const what = `${init.method ?? "GET"} ${path}`;
    const res = await this.answer(path, init);
    try {
      const body = new Uint8Array(await res.arrayBuffer());
      return { status: res.status, contentType: res.headers.get("content-type") ?? "", body };
    } catch (err) {
      throw unavailable(`${this.name}'s answer to ${what} broke off while being read`, err, path);
    }
  }

  /**
   * A 2xx answer whose body is read as it arrives (a WADO-RS series: its instances parsed while the rest comes).
   * Reading the chunks throws what bytes() would for a body that breaks off; a consumer that stops early cancels
   * the rest of the body.
   * @throws DelineateError DLN_ERR_PACS_UNAVAILABLE or DLN_ERR_PACS_REJECTED, from the call or from the chunks
   */
  async streamed(path: string, init: PacsRequest = {}): Promise<PacsStream> {
    const what = `${init.method ?? "GET"} ${path}`;
    const res = await this.answer(path, init);
    const name = this.name;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      if (!res.body) return;
      try {
        for await (const chunk of res.body) yield chunk;
      } catch (err) {
        throw unavailable(`${name}'s answer to ${what} broke off while being read`, err, path);
      }
    }
    return { status: res.status, contentType: res.headers.get("content-type") ?? "", chunks: chunks() };
  }

  /** The answer to a request once its status is 2xx, body unread. */
  private async answer(path: string, init: PacsRequest): Promise<PacsResponse> {
    const what = `${init.method ?? "GET"} ${path}`;
    let res: PacsResponse;
    try {
      res = await this.fetch(this.base + path, init);
    } catch (err) {
      throw unavailable(`${this.name} unreachable (${what})`, err, path);
    }
    if (res.ok) return res;
    // The status decides the error; the body is only detail for its message, so failing to read it changes nothing.
    const detail = (await res.text().catch(() => "")).trim().slice(0, 300);
    throw statusError(res.status, `${this.name} answered ${res.status} to ${what}${detail ? `: ${detail}` : ""}`, {
      path,
    });
  }

  /** The body of a 2xx answer as UTF-8 text. @throws DelineateError as bytes() */
  async text(path: string, init: PacsRequest = {}): Promise<string> {
    return new TextDecoder().decode((await this.bytes(path, init)).body);
  }

  /**
   * The body of a 2xx answer parsed as JSON; undefined when it is empty (DICOMweb servers answer an empty QIDO-RS
   * match with no body at all, or 204).
   * @throws DelineateError as bytes(), and DLN_ERR_PACS_MALFORMED when the body is not JSON
   */
  async json(path: string, init: PacsRequest = {}): Promise<unknown> {
    return parseJsonBody(await this.text(path, init), `${this.name}'s answer to ${init.method ?? "GET"} ${path}`, {
      path,
    });
  }
}

/**
 * Parses a body the PACS sent as JSON; undefined for an empty one.
 * @throws DelineateError DLN_ERR_PACS_MALFORMED, with the parser's error as cause
 */
export function parseJsonBody(text: string, what: string, context: Record<string, string | number>): unknown {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DelineateError(
      "DLN_ERR_PACS_MALFORMED",
      `${what} is not valid JSON: ${(err as Error).message}`,
      context,
      { cause: err },
    );
  }
}

/** A request or body that failed on the way (refused, reset, timed out, cut short): worth retrying. */
function unavailable(what: string, err: unknown, path: string): DelineateError {
  return new DelineateError("DLN_ERR_PACS_UNAVAILABLE", `${what}: ${describe(err)}`, { path }, { cause: err });
}

/** undici reports a body cut short as "terminated" with the socket's error as cause; name both. */
function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : undefined;
  return cause && cause !== message ? `${message} (${cause})` : message;
}
