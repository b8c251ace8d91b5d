import { randomUUID } from "node:crypto";
import dcmjs, { type NaturalDataset } from "dcmjs";
import { TransferSyntax } from "../dicom/uids.js";
import { DelineateError } from "../errors.js";
import { type PacsConnection, type PacsFetch, type PacsResponse, pacsFetch } from "./http.js";
import { boundaryOf, buildMultipart, parseMultipart } from "./multipart.js";

export type { PacsConnection } from "./http.js";

/**
 * A DICOMweb client (QIDO-RS, WADO-RS, STOW-RS) over Node's fetch.
 * Why not `dicomweb-client`: it is built on the browser's XMLHttpRequest, which Node does not have; a
 * polyfill would add a dependency to save ~100 lines, and fetch gives us timeouts and typed errors.
 */
export class DicomWebClient {
  private readonly base: string;
  private readonly fetch: PacsFetch;

  constructor(conn: PacsConnection) {
    this.base = conn.url.replace(/\/+$/, "") + conn.dicomWebRoot.replace(/\/+$/, "");
    this.fetch = pacsFetch(conn);
  }

  /** QIDO-RS: studies matching the query parameters (e.g. a StudyDate range), naturalised. */
  async searchStudies(query: Record<string, string>): Promise<NaturalDataset[]> {
    return this.json(`/studies?${new URLSearchParams(query).toString()}`);
  }

  /** QIDO-RS: the series of a study, naturalised. */
  async searchSeries(studyUID: string): Promise<NaturalDataset[]> {
    return this.json(`/studies/${studyUID}/series?includefield=all`);
  }

  /** QIDO-RS: whether an instance exists in the study (used to never store a result twice). */
  async instanceExists(studyUID: string, sopInstanceUID: string): Promise<boolean> {
    const found = await this.json(`/studies/${studyUID}/instances?SOPInstanceUID=${sopInstanceUID}`);
    return found.length > 0;
  }

  /** WADO-RS metadata of every instance of a series (no pixel data). */
  async seriesMetadata(studyUID: string, seriesUID: string): Promise<NaturalDataset[]> {
    return this.json(`/studies/${studyUID}/series/${seriesUID}/metadata`);
  }

  /** WADO-RS: every instance of a series as a Part 10 file, transcoded by the server to Explicit VR Little Endian. */
  async retrieveSeries(studyUID: string, seriesUID: string): Promise<Uint8Array[]> {
    const res = await this.request(`/studies/${studyUID}/series/${seriesUID}`, {
      headers: {
        Accept: `multipart/related; type="application/dicom"; transfer-syntax=${TransferSyntax.ExplicitVRLittleEndian}`,
      },
    });
    const body = new Uint8Array(await res.arrayBuffer());
    return parseMultipart(body, boundaryOf(res.headers.get("content-type") ?? ""));
  }

  /** STOW-RS into a study. @throws DelineateError when the server refuses any instance. */
  async store(studyUID: string, files: Uint8Array[]): Promise<void> {
    const boundary = `delineate-${randomUUID()}`;
    const res = await this.request(`/studies/${studyUID}`, {
      method: "POST",
      headers: {
        "Content-Type": `multipart/related; type="application/dicom"; boundary=${boundary}`,
        Accept: "application/dicom+json",
      },
      body: buildMultipart(files, boundary),
    });
    // A 200 (or 202) can still list refused instances in FailedSOPSequence (0008,1198), with a reason (0008,1197).
    const text = await res.text();
    let failed: { "00081197"?: { Value?: number[] }; "00081155"?: { Value?: string[] } }[] = [];
    try {
      failed = (JSON.parse(text) as Record<string, { Value?: typeof failed }>)["00081198"]?.Value ?? [];
    } catch {
      // a server may answer without a JSON body; the status said success
    }
    if (failed.length) {
      const what = failed
        .map((f) => `${f["00081155"]?.Value?.[0] ?? "?"} (reason 0x${(f["00081197"]?.Value?.[0] ?? 0).toString(16)})`)
        .join(", ");
      throw new DelineateError(
        "DLN_ERR_PACS_REJECTED",
        `the PACS refused ${failed.length} instance(s) of a STOW-RS request: ${what}`,
        { studyUID },
      );
    }
  }

  private async json(path: string): Promise<NaturalDataset[]> {
    const res = await this.request(path, { headers: { Accept: "application/dicom+json" } });
    const text = await res.text();
    if (!text.trim()) return [];
    const items = JSON.parse(text) as Record<string, unknown>[];
    return items.map((item) => dcmjs.data.DicomMetaDictionary.naturalizeDataset(item));
  }

  private async request(
    path: string,
    init: { method?: string; headers?: Record<string, string>; body?: Uint8Array },
  ): Promise<PacsResponse> {
    let res: PacsResponse;
    try {
      res = await this.fetch(this.base + path, init);
    } catch (err) {
      throw new DelineateError(
        "DLN_ERR_PACS_UNAVAILABLE",
        `PACS unreachable (${init.method ?? "GET"} ${path}): ${(err as Error).message}`,
        { path },
        { cause: err },
      );
    }
    if (res.ok) return res;
    const detail = (await res.text().catch(() => "")).slice(0, 300);
    const transient = res.status >= 500 || res.status === 429 || res.status === 408;
    throw new DelineateError(
      transient ? "DLN_ERR_PACS_UNAVAILABLE" : "DLN_ERR_PACS_REJECTED",
      `PACS answered ${res.status} to ${init.method ?? "GET"} ${path}${detail ? `: ${detail}` : ""}`,
      { path, status: res.status },
    );
  }
}
