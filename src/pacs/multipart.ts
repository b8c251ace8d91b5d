/** multipart/related framing for WADO-RS responses and STOW-RS requests (RFC 2387, DICOM PS3.18). */
import { DelineateError } from "../errors.js";

/** The boundary a multipart content type names, or undefined when it names none (the caller knows who sent it). */
export function boundaryOf(contentType: string): string | undefined {
  return /boundary="?([^";,]+)"?/i.exec(contentType)?.[1] || undefined;
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  outer: for (
    let i = hay.indexOf(first!, from);
    i !== -1 && i <= hay.length - needle.length;
    i = hay.indexOf(first!, i + 1)
  ) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Splits a multipart body the PACS sent (WADO-RS) into the bodies of its parts (headers dropped); parts are views,
 * not copies.
 * @throws DelineateError DLN_ERR_PACS_UNAVAILABLE (transient: the job is retried) when a part has no closing
 * boundary. The HTTP layer checks the body's length or chunking, but a PACS stopped mid-response can still end its
 * chunked body cleanly (seen with Orthanc stopped during a WADO-RS transfer): a body cut short, not bad content.
 */
export function parseMultipart(body: Uint8Array, boundary: string): Uint8Array[] {
  const enc = new TextEncoder();
  const delim = enc.encode(`--${boundary}`);
  const headerEnd = enc.encode("\r\n\r\n");
  const parts: Uint8Array[] = [];
  let pos = indexOf(body, delim, 0);
  while (pos !== -1) {
    const afterDelim = pos + delim.length;
    if (body[afterDelim] === 0x2d && body[afterDelim + 1] === 0x2d) break; // closing "--"
    const hdr = indexOf(body, headerEnd, afterDelim);
    if (hdr === -1) break;
    const start = hdr + headerEnd.length;
    const next = indexOf(body, delim, start);
    if (next === -1) {
      throw new DelineateError(
        "DLN_ERR_PACS_UNAVAILABLE",
        "the PACS's multipart body ends without a closing boundary (the transfer was cut short; will try again)",
        { parts: parts.length },
      );
    }
    const end = next - 2; // the CRLF before the delimiter belongs to the delimiter
    parts.push(body.subarray(start, Math.max(start, end)));
    pos = next;
  }
  return parts;
}

/** Frames DICOM Part 10 files as a multipart/related body for STOW-RS. */
export function buildMultipart(files: Uint8Array[], boundary: string): Uint8Array {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  for (const f of files) {
    chunks.push(
      enc.encode(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${f.byteLength}\r\n\r\n`),
      f,
      enc.encode("\r\n"),
    );
  }
  chunks.push(enc.encode(`--${boundary}--\r\n`));
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  return out;
}

/**
 * Reads a multipart body pushed to Delineate's STOW-RS from a stream and yields each part's body as soon as it is
 * complete, so memory holds one part (one DICOM instance), not the whole request.
 * @throws DelineateError DLN_ERR_STOW_TOO_LARGE past `maxBytes`, DLN_ERR_STOW_INVALID when the body ends without its
 * closing boundary; an error of the stream itself (the client went away) is passed on as it is.
 */
export async function* readMultipartStream(
  chunks: AsyncIterable<Uint8Array>,
  boundary: string,
  maxBytes: number,
): AsyncGenerator<Uint8Array> {
  const delim = Buffer.from(`--${boundary}`);
  const partEnd = Buffer.from(`\r\n--${boundary}`);
  const headerEnd = Buffer.from("\r\n\r\n");
  let buf = Buffer.alloc(0);
  let phase: "preamble" | "delimiter" | "headers" | "body" | "done" = "preamble";
  let searchFrom = 0; // where the body's delimiter search resumes, so a large part is scanned once
  let total = 0;
  for await (const chunk of chunks) {
    total += chunk.byteLength;
    if (total > maxBytes) throw new DelineateError("DLN_ERR_STOW_TOO_LARGE", `request body over ${maxBytes} bytes`);
    if (phase === "done") continue;
    buf = buf.length ? Buffer.concat([buf, chunk]) : Buffer.from(chunk);
    for (;;) {
      if (phase === "preamble") {
        const i = buf.indexOf(delim);
        if (i === -1) break;
        buf = buf.subarray(i + delim.length);
        phase = "delimiter";
      } else if (phase === "delimiter") {
        if (buf.length < 2) break;
        if (buf[0] === 0x2d && buf[1] === 0x2d) {
          phase = "done";
          break;
        }
        phase = "headers";
      } else if (phase === "headers") {
        const i = buf.indexOf(headerEnd);
        if (i === -1) break;
        buf = buf.subarray(i + headerEnd.length);
        phase = "body";
        searchFrom = 0;
      } else if (phase === "body") {
        const i = buf.indexOf(partEnd, searchFrom);
        if (i === -1) {
          searchFrom = Math.max(0, buf.length - partEnd.length + 1);
          break;
        }
        yield new Uint8Array(buf.subarray(0, i)); // a view of this buffer; the next concat makes a new one
        buf = buf.subarray(i + partEnd.length);
        phase = "delimiter";
      } else break;
    }
  }
  if (phase !== "done")
    throw new DelineateError("DLN_ERR_STOW_INVALID", "multipart body ends without a closing boundary");
}
