import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { DelineateError, type ErrorCode } from "../../src/errors.js";
import { DicomWebClient } from "../../src/pacs/dicomweb.js";
import { isTransientStatus, type PacsConnection } from "../../src/pacs/http.js";
import { buildMultipart } from "../../src/pacs/multipart.js";
import { OrthancRest } from "../../src/pacs/orthancChanges.js";

/**
 * A server that misbehaves on demand, the way PACSes and the networks in front of them do: each request gets the
 * behaviour of the current `fault`, whatever its path, so every client call meets every fault.
 */
type Fault = (req: IncomingMessage, res: ServerResponse) => void;
const faults: Record<string, Fault> = {
  "connection reset before an answer": (req) => req.socket.destroy(),
  "body cut short (Content-Length)": (_req, res) => {
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": "10000" });
    res.write(`[${" ".repeat(500)}`, () => res.socket?.destroy());
  },
  "body cut short (chunked)": (_req, res) => {
    res.writeHead(200, { "Content-Type": "application/json" }); // no length: chunked
    res.write(`[${" ".repeat(500)}`, () => res.socket?.destroy());
  },
  "timeout while the body is read": (_req, res) => {
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": "10000" });
    res.write("[ "); // and nothing more
  },
  ...Object.fromEntries(
    [408, 429, 500, 502, 503].map((status) => [`status ${status}`, (_req, res) => res.writeHead(status).end("busy")]),
  ),
};
const refusals: Record<string, Fault> = Object.fromEntries(
  [400, 401, 403, 404, 405, 409].map((status) => [
    `status ${status}`,
    (_req: IncomingMessage, res: ServerResponse) => res.writeHead(status).end("no"),
  ]),
);

describe("PACS HTTP: one rule for what is retried", () => {
  let server: Server;
  let fault: Fault = (_req, res) => res.end();
  let conn: PacsConnection;
  before(async () => {
    server = createServer((req, res) => fault(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    conn = {
      url: `http://127.0.0.1:${port}`,
      dicomWebRoot: "/dicom-web",
      username: "u",
      password: "p",
      timeoutMs: 500,
    };
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  /** every request the node makes of a PACS, through both clients */
  const calls = (): Record<string, () => Promise<unknown>> => {
    const web = new DicomWebClient(conn);
    const rest = new OrthancRest(conn);
    return {
      "QIDO-RS": () => web.searchSeries("1.2.3"),
      "WADO-RS retrieve": () => web.retrieveSeries("1.2.3", "1.2.3.4"),
      "STOW-RS": () => web.store("1.2.3", [new Uint8Array(10)]),
      "Orthanc changes": () => rest.changes(0),
      "Orthanc study": () => rest.studyInstanceUID("abc"),
    };
  };
  const coded = (code: ErrorCode, check: (e: DelineateError) => boolean) => (e: unknown) => {
    assert.ok(e instanceof DelineateError, `a DelineateError, not ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(check(e), `${e.message} (${JSON.stringify(e.context)})`);
    return true;
  };

  for (const [name, f] of Object.entries(faults)) {
    it(`${name}: DLN_ERR_PACS_UNAVAILABLE (retried) from every call`, async () => {
      fault = f;
      for (const [call, run] of Object.entries(calls())) {
        await assert.rejects(
          run(),
          coded("DLN_ERR_PACS_UNAVAILABLE", (e) => e.retryable && (e.context.status !== undefined || !!e.cause)),
          call,
        );
      }
    });
  }
  for (const [name, f] of Object.entries(refusals)) {
    it(`${name}: DLN_ERR_PACS_REJECTED (not retried) from every call`, async () => {
      fault = f;
      for (const [call, run] of Object.entries(calls())) {
        if (call === "Orthanc study" && name === "status 404") {
          assert.equal(await run(), undefined, "a deleted study is no error");
          continue;
        }
        await assert.rejects(
          run(),
          coded("DLN_ERR_PACS_REJECTED", (e) => !e.retryable && `status ${e.context.status}` === name),
          call,
        );
      }
    });
  }
  it("a 2xx JSON body that does not parse: DLN_ERR_PACS_MALFORMED, with the parser's error as cause", async () => {
    fault = (_req, res) => res.writeHead(200, { "Content-Type": "application/dicom+json" }).end('[{"0020000D": ');
    for (const [call, run] of Object.entries(calls())) {
      if (call === "WADO-RS retrieve") continue; // not JSON: below
      await assert.rejects(
        run(),
        coded("DLN_ERR_PACS_MALFORMED", (e) => !e.retryable && e.cause instanceof SyntaxError),
        call,
      );
    }
    await assert.rejects(
      calls()["WADO-RS retrieve"]!(),
      coded("DLN_ERR_PACS_MALFORMED", (e) => /not a multipart body/.test(e.message)),
      "a WADO-RS answer without a multipart boundary",
    );
  });
  it("JSON of the wrong shape: DLN_ERR_PACS_MALFORMED, not a TypeError", async () => {
    fault = (_req, res) => res.writeHead(200, { "Content-Type": "application/json" }).end('{"Last": 3}');
    const { "QIDO-RS": qido, "Orthanc changes": changes } = calls();
    await assert.rejects(
      qido!(),
      coded("DLN_ERR_PACS_MALFORMED", (e) => /not a JSON array/.test(e.message)),
    );
    await assert.rejects(
      changes!(),
      coded("DLN_ERR_PACS_MALFORMED", (e) => /no Changes list/.test(e.message)),
    );
  });
  it("STOW-RS: success stands on its status when the answer is empty or not JSON; a refusal listed in JSON does not", async () => {
    const { "STOW-RS": stow } = calls();
    fault = (_req, res) => res.writeHead(200).end();
    await stow!();
    fault = (_req, res) => res.writeHead(200, { "Content-Type": "application/dicom+xml" }).end("<NativeDicomModel/>");
    await stow!();
    fault = (_req, res) =>
      res
        .writeHead(202, { "Content-Type": "application/dicom+json" })
        .end(JSON.stringify({ "00081198": { vr: "SQ", Value: [{ "00081197": { vr: "US", Value: [0xa700] } }] } }));
    await assert.rejects(
      stow!(),
      coded("DLN_ERR_PACS_REJECTED", (e) => /reason 0xa700/.test(e.message)),
    );
  });
  it("WADO-RS: each instance is handed over as soon as it has come, while the rest is still on the way", async () => {
    // The server holds back the second half of the body until the client has been handed the first instance: a
    // client that reads the whole body before splitting it never gets there, and fails on the 500 ms timeout.
    const B = "wado-7d2e";
    const files = [Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff), new Uint8Array(5000).fill(0x2d)];
    const body = buildMultipart(files, B);
    const cut = 3000 + 200; // the first part and its closing delimiter, not the second's end
    let firstHandedOver: () => void = () => {};
    const handedOver = new Promise<void>((resolve) => {
      firstHandedOver = resolve;
    });
    fault = (_req, res) => {
      res.writeHead(200, { "Content-Type": `multipart/related; type="application/dicom"; boundary=${B}` });
      res.write(body.subarray(0, cut));
      void handedOver.then(() => res.end(body.subarray(cut)));
    };
    const seen: number[] = [];
    const got = await new DicomWebClient(conn).retrieveSeries("1.2.3", "1.2.3.4", (bytes, i) => {
      assert.deepEqual(bytes, files[i]);
      seen.push(i);
      if (i === 0) firstHandedOver();
    });
    assert.deepEqual(seen, [0, 1]);
    assert.deepEqual(got, files);
  });
  it("WADO-RS: what the caller throws on an instance stops the transfer and comes out as it is", async () => {
    const B = "wado-7d2f";
    fault = (_req, res) => {
      res.writeHead(200, { "Content-Type": `multipart/related; boundary=${B}` });
      // the first instance whole, then nothing more: only the caller's error can end this before the timeout
      res.write(buildMultipart([new Uint8Array(10), new Uint8Array(100)], B).subarray(0, -60));
    };
    const mine = new Error("not DICOM");
    await assert.rejects(
      new DicomWebClient(conn).retrieveSeries("1.2.3", "1.2.3.4", () => {
        throw mine;
      }),
      (e) => e === mine,
    );
  });
  it("isTransientStatus: 408, 429 and 5xx; no other status", () => {
    const transient = Array.from({ length: 500 }, (_, i) => i + 100).filter(isTransientStatus);
    assert.deepEqual(transient, [408, 429, ...Array.from({ length: 100 }, (_, i) => 500 + i)]);
  });
});
