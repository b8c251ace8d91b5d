import { randomUUID } from "node:crypto";
import type { NaturalDataset } from "dcmjs";
import { dcmjs } from "../dicom/dcmjsLibrary.js";
import { requireDicomUid, TransferSyntax } from "../dicom/uids.js";
import { DelineateError } from "../errors.js";
import { type PacsConnection, PacsHttp, parseJsonBody } from "./http.js";
import { boundaryOf, buildMultipart, readPacsMultipart } from "./multipart.js";

export type { PacsConnection } from "./http.js";

// Every UID put into a path is checked first: "/studies/../series" is every series in the PACS.
const study = (uid: string) => requireDicomUid(uid, "StudyInstanceUID");
const series = (uid: string) => requireDicomUid(uid, "SeriesInstanceUID");

/**
 * A DICOMweb client (QIDO-RS, WADO-RS, STOW-RS) over Node's fetch.
 * Why not `dicomweb-client`: it is built on the browser's XMLHttpRequest, which Node does not have; a
 * polyfill would add a dependency to save ~100 lines, and fetch gives us timeouts and typed errors.
 */
export class DicomWebClient {
  private readonly http: PacsHttp;

  /** @throws DelineateError DLN_ERR_CONFIG_INVALID when the connection's CA file cannot be read. */
  constructor(conn: PacsConnection) {
    this.http = new PacsHttp(conn, conn.url.replace(/\/+$/, "") + conn.dicomWebRoot);
  }

  /** QIDO-RS: studies matching the query parameters (e.g. a StudyDate range), naturalised. */
  async searchStudies(query: Record<string, string>): Promise<NaturalDataset[]> {
    return this.json(`/studies?${new URLSearchParams(query).toString()}`);
  }

  /** QIDO-RS: the series of a study, naturalised. */
  async searchSeries(studyUID: string): Promise<NaturalDataset[]> {
    return this.json(`/studies/${study(studyUID)}/series?includefield=all`);
  }

  /** QIDO-RS: whether an instance exists in the study (used to never store a result twice). */
  async instanceExists(studyUID: string, sopInstanceUID: string): Promise<boolean> {
    const found = await this.json(
      `/studies/${study(studyUID)}/instances?SOPInstanceUID=${requireDicomUid(sopInstanceUID, "SOPInstanceUID")}`,
    );
    return found.length > 0;
  }

  /** WADO-RS metadata of every instance of a series (no pixel data). */
  async seriesMetadata(studyUID: string, seriesUID: string): Promise<NaturalDataset[]> {
    return this.json(`/studies/${study(studyUID)}/series/${series(seriesUID)}/metadata`);
  }

  /**
   * WADO-RS: every instance of a series as a Part 10 file, transcoded by the server to Explicit VR Little Endian.
   * The body is read as it arrives: `onInstance` is given each instance as soon as it has come whole (the caller
   * parses it while the rest is on the way); what it throws stops the transfer and is passed on as it is.
   * @throws DelineateError DLN_ERR_PACS_UNAVAILABLE (retryable: unreachable, timed out, a body cut short, 408, 429,
   * 5xx), DLN_ERR_PACS_REJECTED (another 4xx), DLN_ERR_PACS_MALFORMED (not a multipart body)
   */
  async retrieveSeries(
    studyUID: string,
    seriesUID: string,
    onInstance?: (bytes: Uint8Array, index: number) => void,
  ): Promise<Uint8Array[]> {
    const path = `/studies/${study(studyUID)}/series/${series(seriesUID)}`;
    const res = await this.http.streamed(path, {
      headers: {
        Accept: `multipart/related; type="application/dicom"; transfer-syntax=${TransferSyntax.ExplicitVRLittleEndian}`,
      },
    });
    const boundary = boundaryOf(res.contentType);
    if (!boundary) {
      // read to its end first: a body that breaks off is the network's fault (retried), whatever its type says
      for await (const _ of res.chunks);
      throw new DelineateError(
        "DLN_ERR_PACS_MALFORMED",
        `the PACS answered WADO-RS ${path} with "${res.contentType}", not a multipart body with a boundary`,
        { path },
      );
    }
    const files: Uint8Array[] = [];
    for await (const part of readPacsMultipart(res.chunks, boundary)) {
      files.push(part);
      onInstance?.(part, files.length - 1);
    }
    return files;
  }

  /**
   * STOW-RS into a study.
   * @throws DelineateError DLN_ERR_PACS_REJECTED when the server refuses any instance, DLN_ERR_PACS_MALFORMED when
   * its JSON answer does not parse, and the errors of retrieveSeries for the request itself
   */
  async store(studyUID: string, files: Uint8Array[]): Promise<void> {
    const boundary = `delineate-${randomUUID()}`;
    const path = `/studies/${study(studyUID)}`;
    const res = await this.http.bytes(path, {
      method: "POST",
      headers: {
        "Content-Type": `multipart/related; type="application/dicom"; boundary=${boundary}`,
        Accept: "application/dicom+json",
      },
      body: buildMultipart(files, boundary),
    });
    // A 200 (or 202) can still list refused instances in FailedSOPSequence (0008,1198), with a reason (0008,1197).
    // Only a JSON answer is read for it: PS3.18 lets a server answer in XML, or not at all, and then the success
    // status is all there is to go on. A JSON answer that does not parse is an error (DLN_ERR_PACS_MALFORMED), not a
    // success: the server meant to list what it refused, and a result must not be reported stored when it may not be.
    if (!/json/i.test(res.contentType)) return;
    const answer = parseJsonBody(new TextDecoder().decode(res.body), `the PACS's answer to STOW-RS ${path}`, { path });
    type FailedSOP = { "00081197"?: { Value?: number[] }; "00081155"?: { Value?: string[] } };
    const failed = (answer as Record<string, { Value?: FailedSOP[] }> | undefined)?.["00081198"]?.Value ?? [];
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

  /** A QIDO-RS or WADO-RS metadata answer, naturalised; an empty body is no match. */
  private async json(path: string): Promise<NaturalDataset[]> {
    const items = await this.http.json(path, { headers: { Accept: "application/dicom+json" } });
    if (items === undefined) return [];
    if (!Array.isArray(items)) {
      throw new DelineateError("DLN_ERR_PACS_MALFORMED", `the PACS's answer to GET ${path} is not a JSON array`, {
        path,
      });
    }
    return items.map((item: Record<string, unknown>) => dcmjs().data.DicomMetaDictionary.naturalizeDataset(item));
  }
}
