import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DelineateError, type ErrorCode } from "../../src/errors.js";
import {
  boundaryOf,
  buildMultipart,
  parseMultipart,
  readMultipartPieces,
  readMultipartStream,
  readPacsMultipart,
} from "../../src/pacs/multipart.js";

/** Deterministic pseudo-random bytes, including CR, LF and "-" often, to tempt a parser into false delimiters. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const r = x >>> 24;
    out[i] = r < 40 ? 0x0d : r < 80 ? 0x0a : r < 120 ? 0x2d : r;
  }
  return out;
}

async function* chunked(body: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let pos = 0;
  for (let k = 0; pos < body.length; k++) {
    const n = sizes[k % sizes.length]!;
    yield body.subarray(pos, pos + n);
    pos += n;
  }
}

const coded = (code: ErrorCode, message: RegExp) => (e: unknown) =>
  e instanceof DelineateError && e.code === code && message.test(e.message);

const collect = async (it: AsyncIterable<Uint8Array>) => {
  const out: Uint8Array[] = [];
  for await (const p of it) out.push(p);
  return out;
};

describe("multipart/related", () => {
  const B = "delineate-4f1c9a";
  // the last part holds the boundary cut short: a near miss the parser must not take for the end of the part
  const parts = [
    bytes(1, 1),
    bytes(0, 2),
    bytes(70_000, 3),
    bytes(4097, 4),
    new TextEncoder().encode(`\r\n--${B.slice(0, -1)}\r\n--`),
  ];
  const body = buildMultipart(parts, B);

  it("round-trips parts through the whole-body parser", () => {
    assert.deepEqual(parseMultipart(body, B), parts);
  });
  for (const sizes of [[1], [3, 7, 1], [4096], [body.length]]) {
    it(`yields the same parts from a stream in chunks of ${sizes.join(", ")} byte(s)`, async () => {
      assert.deepEqual(await collect(readMultipartStream(chunked(body, sizes), B, body.length)), parts);
    });
  }
  it("stops past the size limit, and refuses a body without its closing boundary", async () => {
    await assert.rejects(
      collect(readMultipartStream(chunked(body, [1000]), B, body.length - 1)),
      coded("DLN_ERR_STOW_TOO_LARGE", /over/),
    );
    await assert.rejects(
      collect(readMultipartStream(chunked(body.subarray(0, body.length - 10), [1000]), B, body.length)),
      coded("DLN_ERR_STOW_INVALID", /without a closing boundary/),
    );
  });
  it("keeps a large part as the chunks it arrived in, never joining it as it grows (that was quadratic: 64 MB took 37 s)", async () => {
    // The cost shows in what the reader does, not in a clock: a part of 16 MB in the 64 KiB chunks a socket gives
    // comes out as views of those chunks (no byte of the body copied), one per chunk; the old reader joined the
    // part's buffer on every chunk, so each part came out as one new buffer. Speed lives in bench:stow.
    const part = Uint8Array.from({ length: 16 * 2 ** 20 }, (_, i) => (i * 7) & 0xff);
    const whole = buildMultipart([part], B);
    const chunk = 65536;
    const parts: Buffer[][] = [];
    for await (const pieces of readMultipartPieces(chunked(whole, [chunk]), B, whole.length)) parts.push(pieces);
    assert.equal(parts.length, 1);
    const pieces = parts[0]!;
    assert.ok(Buffer.concat(pieces).equals(part), "the part's bytes, in order");
    assert.ok(pieces.length >= part.length / chunk, `${pieces.length} pieces for ${part.length / chunk} chunks`);
    // only the bytes that came in one chunk with the part's headers are copied (with the headers, a few KiB at most)
    const copied = pieces.filter((p) => p.buffer !== whole.buffer).reduce((n, p) => n + p.length, 0);
    assert.ok(copied <= chunk, `${copied} bytes of the part copied; the rest are views of the bytes as they arrived`);
  });
  it("refuses part headers that never end instead of buffering them", async () => {
    const endless = new TextEncoder().encode(`--${B}\r\nContent-Type: application/dicom\r\nX: ${"a".repeat(200_000)}`);
    await assert.rejects(
      collect(readMultipartStream(chunked(endless, [1000]), B, 10 ** 9)),
      coded("DLN_ERR_STOW_INVALID", /headers run past/),
    );
  });
  it("takes a PACS's body whose last part has no closing boundary for a cut transfer, to be retried", async () => {
    assert.throws(
      () => parseMultipart(body.subarray(0, body.length - 200), B),
      coded("DLN_ERR_PACS_UNAVAILABLE", /without a closing boundary/),
    );
    for (const cut of [200, 10, 7]) {
      await assert.rejects(
        collect(readPacsMultipart(chunked(body.subarray(0, body.length - cut), [1000]), B)),
        coded("DLN_ERR_PACS_UNAVAILABLE", /without a closing boundary/),
        `${cut} bytes short`,
      );
    }
  });
  for (const sizes of [[1], [3, 7, 1], [65536]]) {
    it(`reads a PACS's body as it streams, in chunks of ${sizes.join(", ")} byte(s), into the same parts`, async () => {
      assert.deepEqual(await collect(readPacsMultipart(chunked(body, sizes), B)), parts);
    });
  }
  it("refuses a PACS's part headers that never end as a malformed answer, not buffered", async () => {
    const endless = new TextEncoder().encode(`--${B}\r\nContent-Type: application/dicom\r\nX: ${"a".repeat(200_000)}`);
    await assert.rejects(
      collect(readPacsMultipart(chunked(endless, [1000]), B)),
      coded("DLN_ERR_PACS_MALFORMED", /headers run past/),
    );
  });
  it("reads the boundary from a content type, quoted or not, and says when there is none", () => {
    assert.equal(boundaryOf(`multipart/related; type="application/dicom"; boundary="${B}"`), B);
    assert.equal(boundaryOf(`multipart/related; boundary=${B}; type="application/dicom"`), B);
    assert.equal(boundaryOf("application/dicom+json"), undefined);
    assert.equal(boundaryOf('multipart/related; boundary=""'), undefined);
  });
});
