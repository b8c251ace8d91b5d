/** multipart/related framing for WADO-RS responses and STOW-RS requests (RFC 2387, DICOM PS3.18). */
import { DelineateError, type ErrorCode } from "../errors.js";

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

/** The most bytes a part's headers (or the preamble's last line) may take: past it the body is refused, not buffered. */
const MAX_HEADER_BYTES = 64 * 1024;

/** The last `n` bytes of a list of buffers (n is small: a boundary's length). */
function tailOf(pieces: Buffer[], n: number): Buffer {
  const out: Buffer[] = [];
  let need = n;
  for (let k = pieces.length - 1; k >= 0 && need > 0; k--) {
    const p = pieces[k]!;
    out.unshift(p.subarray(Math.max(0, p.length - need)));
    need -= Math.min(need, p.length);
  }
  return Buffer.concat(out);
}

/** The first `end` bytes of a list of buffers, as views of them. */
function piecesUpTo(pieces: Buffer[], end: number): Buffer[] {
  const out: Buffer[] = [];
  let left = end;
  for (const p of pieces) {
    if (left <= 0) break;
    out.push(p.length <= left ? p : p.subarray(0, left));
    left -= Math.min(left, p.length);
  }
  return out;
}

/**
 * Reads a multipart body pushed to Delineate's STOW-RS from a stream and yields each part's body as soon as it is
 * complete, so memory holds one part (one DICOM instance), not the whole request.
 * A part's body is kept as the list of chunks it arrived in and joined once, when its closing delimiter is found:
 * joining on every chunk made a part of N bytes cost O(N²) (a 128 MB part took 157 s and stalled the event loop).
 * Each chunk is searched for the delimiter together with the few bytes before it, so a delimiter split across
 * chunks is still found, and every byte is scanned a bounded number of times.
 * @throws DelineateError DLN_ERR_STOW_TOO_LARGE past `maxBytes`, DLN_ERR_STOW_INVALID when the body ends without its
 * closing boundary or a part's headers run past 64 KiB; an error of the stream itself (the client went away) is
 * passed on as it is.
 */
export async function* readMultipartStream(
  chunks: AsyncIterable<Uint8Array>,
  boundary: string,
  maxBytes: number,
): AsyncGenerator<Uint8Array> {
  for await (const pieces of readMultipartPieces(chunks, boundary, maxBytes)) yield joined(pieces);
}

/** The codes a multipart reader refuses a body with: who sent it decides (a client's STOW-RS, a PACS's WADO-RS). */
export interface MultipartRefusals {
  /** past the size limit */
  tooLarge: ErrorCode;
  /** the body ends without its closing boundary */
  unended: ErrorCode;
  /** a part's headers run past 64 KiB */
  invalid: ErrorCode;
}

const STOW_REFUSALS: MultipartRefusals = {
  tooLarge: "DLN_ERR_STOW_TOO_LARGE",
  unended: "DLN_ERR_STOW_INVALID",
  invalid: "DLN_ERR_STOW_INVALID",
};

/**
 * A PACS's WADO-RS body read as it arrives: each part (one instance) yielded as soon as its closing delimiter has
 * come, so the caller parses it while the rest is still on the way, and the whole body is never held as one buffer.
 * A body that ends without its closing boundary is a transfer cut short (as parseMultipart says), to be retried;
 * part headers past 64 KiB are not a multipart body.
 * @throws DelineateError DLN_ERR_PACS_UNAVAILABLE (cut short), DLN_ERR_PACS_MALFORMED (headers that never end)
 */
export async function* readPacsMultipart(
  chunks: AsyncIterable<Uint8Array>,
  boundary: string,
): AsyncGenerator<Uint8Array> {
  const refusals: MultipartRefusals = {
    tooLarge: "DLN_ERR_PACS_MALFORMED", // no limit is set: the PACS is the node's own, as before
    unended: "DLN_ERR_PACS_UNAVAILABLE",
    invalid: "DLN_ERR_PACS_MALFORMED",
  };
  for await (const pieces of readMultipartPieces(chunks, boundary, Number.POSITIVE_INFINITY, refusals))
    yield joined(pieces);
}

/** A part's pieces as one array: the piece itself when it came whole, else one copy of the part. */
function joined(pieces: Buffer[]): Uint8Array {
  if (pieces.length === 1) return new Uint8Array(pieces[0]!.buffer, pieces[0]!.byteOffset, pieces[0]!.byteLength);
  return new Uint8Array(Buffer.concat(pieces));
}

/**
 * readMultipartStream, each part given as the pieces it arrived in, never joined: joining a 512 MB part is one copy
 * of 512 MB on the event loop (hundreds of milliseconds in which nothing else is answered).
 */
export async function* readMultipartPieces(
  chunks: AsyncIterable<Uint8Array>,
  boundary: string,
  maxBytes: number,
  refusals: MultipartRefusals = STOW_REFUSALS,
): AsyncGenerator<Buffer[]> {
  const delim = Buffer.from(`--${boundary}`);
  const partEnd = Buffer.from(`\r\n--${boundary}`);
  const headerEnd = Buffer.from("\r\n\r\n");
  let buf: Buffer = Buffer.alloc(0); // bytes outside a part's body (preamble, delimiter, headers): kept small
  let body: Buffer[] = []; // the open part's body so far, as it arrived
  let bodyLength = 0;
  let phase: "preamble" | "delimiter" | "headers" | "body" | "done" = "preamble";
  let total = 0;
  for await (const chunk of chunks) {
    total += chunk.byteLength;
    if (total > maxBytes) throw new DelineateError(refusals.tooLarge, `request body over ${maxBytes} bytes`);
    if (phase === "done") continue;
    if (phase !== "body") buf = buf.length ? Buffer.concat([buf, chunk]) : Buffer.from(chunk);
    // a view, not a copy: a stream's chunks are not reused
    let pending: Buffer | undefined =
      phase === "body" ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : undefined;
    for (;;) {
      if (phase === "body") {
        if (pending === undefined) {
          pending = buf;
          buf = Buffer.alloc(0);
        }
        // where the delimiter starts, counted from the body's last tailLength bytes (one split across chunks starts
        // there): the seam between them and this chunk is searched in a small copy, the chunk itself in place
        const tailLength = Math.min(partEnd.length - 1, bodyLength);
        let i = -1;
        if (tailLength) {
          const seam = Buffer.concat([tailOf(body, tailLength), pending.subarray(0, partEnd.length - 1)]);
          i = seam.indexOf(partEnd);
        }
        if (i === -1) {
          const j = pending.indexOf(partEnd);
          if (j !== -1) i = j + tailLength;
        }
        if (i === -1) {
          if (pending.length) body.push(pending);
          bodyLength += pending.length;
          pending = undefined;
          break;
        }
        const end = bodyLength - tailLength + i; // where the part ends, counted from its first byte
        yield piecesUpTo([...body, pending], end);
        buf = pending.subarray(i + partEnd.length - tailLength);
        pending = undefined;
        body = [];
        bodyLength = 0;
        phase = "delimiter";
      } else if (phase === "preamble") {
        const i = buf.indexOf(delim);
        if (i === -1) {
          buf = buf.subarray(Math.max(0, buf.length - delim.length + 1)); // a preamble is never kept
          break;
        }
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
        if (i === -1) {
          if (buf.length > MAX_HEADER_BYTES)
            throw new DelineateError(refusals.invalid, `a part's headers run past ${MAX_HEADER_BYTES} bytes`);
          break;
        }
        buf = buf.subarray(i + headerEnd.length);
        phase = "body";
      } else break;
    }
  }
  if (phase !== "done") throw new DelineateError(refusals.unended, "multipart body ends without a closing boundary");
}
