import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, it } from "node:test";
import { str } from "../../src/dicom/dataset.js";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { DicomWebClient } from "../../src/pacs/dicomweb.js";
import { buildMultipart } from "../../src/pacs/multipart.js";
import { type NodeProcess, startNodeProcess } from "../helpers/nodeProcess.js";
import { startOrthanc, type TestOrthanc, waitFor } from "../helpers/orthanc.js";
import { stopTestPostgres } from "../helpers/store.js";
import { tempDir } from "../helpers/tools.js";

let orthanc: TestOrthanc;
let node: NodeProcess;
let work: string;

before(async () => {
  work = tempDir("stow-");
  orthanc = await startOrthanc(); // the destination of results
  node = await startNodeProcess(orthanc, path.join(work, "data"), {
    logFile: path.join(work, "node.log"),
    ingest: { changeFeed: false, webhook: false, stow: { enabled: true, quietSeconds: 1, maxBodyMiB: 1 } },
  });
});

after(async () => {
  await node?.stop();
  await orthanc?.stop();
  await stopTestPostgres();
});

const stow = (body: Uint8Array, boundary: string, token: string | null) =>
  fetch(`http://127.0.0.1:${node.port}/dicom-web/studies`, {
    method: "POST",
    headers: {
      "Content-Type": `multipart/related; type="application/dicom"; boundary=${boundary}`,
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: new Blob([body as Uint8Array<ArrayBuffer>]),
  });

it("takes a study pushed over STOW-RS, refuses bad parts one by one, and stores the SEG in the PACS", {
  timeout: 180_000,
}, async () => {
  const s = writePhantomSeries(path.join(work, "study"), {
    size: 64,
    slices: 10,
    pixelSpacing: 6,
    sliceSpacing: 4,
    patientName: "Stow^Stella",
    patientID: "STOW-1",
  });
  const files = readdirSync(path.join(work, "study")).map(
    (f) => new Uint8Array(readFileSync(path.join(work, "study", f))),
  );
  const truncated = files[0]!.subarray(0, 300);
  const notDicom = new TextEncoder().encode("this is not DICOM");
  // an element after the pixel data declaring 2 GiB while 4 bytes follow
  const huge = new Uint8Array(files[1]!.length + 16);
  huge.set(files[1]!);
  huge.set([0xe1, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xf0, 0xff, 0xff, 0x7f, 1, 2, 3, 4], files[1]!.length);
  // the damaged copy repeats a good instance's UIDs: refused, it must not replace the good one already kept
  const res = await stow(buildMultipart([...files, truncated, notDicom, huge], "b0undary"), "b0undary", node.token);
  assert.equal(res.status, 202, "some parts stored, some refused");
  const body = (await res.json()) as Record<string, { Value: unknown[] }>;
  assert.equal(body["00081199"]?.Value.length, 10);
  assert.equal(
    body["00081198"]?.Value.length,
    3,
    "the truncated file, the non-DICOM part and the huge declared length",
  );

  const [job] = await waitFor("the pushed study's job", () => node.settled(s.studyInstanceUID), 120_000, 250);
  assert.equal(job?.state, "done", JSON.stringify(job));
  assert.equal(job.source, "pushed");
  const pacs = new DicomWebClient({
    url: orthanc.url,
    dicomWebRoot: "/dicom-web",
    username: orthanc.username,
    password: orthanc.password,
    timeoutMs: 30_000,
  });
  assert.deepEqual(
    (await pacs.searchSeries(s.studyInstanceUID)).map((x) => str(x, "Modality")).sort(),
    ["RTSTRUCT", "SEG", "SR"],
    "the results went to the PACS",
  );

  const log = readFileSync(node.logFile, "utf8");
  assert.match(log, /not readable DICOM/);
  assert.match(log, /declares 2147483632 bytes/);
  assert.doesNotMatch(log, /Stow\^Stella|STOW-1/);
});

it("refuses STOW-RS without the token, and bodies over the limit", async () => {
  const small = buildMultipart([new Uint8Array(10)], "b");
  assert.equal((await stow(small, "b", null)).status, 401);
  assert.equal((await stow(small, "b", "wrong")).status, 401);
  const big = buildMultipart([new Uint8Array(2 * 2 ** 20)], "b");
  const refusedBig = await stow(big, "b", node.token);
  assert.equal(refusedBig.status, 413, "refused on its Content-Length");
  assert.equal(((await refusedBig.json()) as { code: string }).code, "DLN_ERR_STOW_TOO_LARGE");
  // chunked, without a Content-Length: refused while it is read, once past the limit
  const streamed = await fetch(`http://127.0.0.1:${node.port}/dicom-web/studies`, {
    method: "POST",
    headers: {
      "Content-Type": 'multipart/related; type="application/dicom"; boundary=b',
      Authorization: `Bearer ${node.token}`,
    },
    body: new ReadableStream({
      start(c) {
        for (let o = 0; o < big.length; o += 65_536) c.enqueue(big.subarray(o, o + 65_536));
        c.close();
      },
    }),
    duplex: "half",
  } as RequestInit);
  assert.equal(streamed.status, 413);
  assert.equal(((await streamed.json()) as { code: string }).code, "DLN_ERR_STOW_TOO_LARGE");
  // answered mid-body: a kept-alive connection would hang the client's next request on it
  assert.equal(streamed.headers.get("connection"), "close");
  assert.equal(
    (await stow(small, "b", node.token)).status,
    409,
    "the node still answers: a part that is not DICOM is refused",
  );
});

it("answers 400 with DLN_ERR_STOW_INVALID to a body that is not multipart/related, or ends without its boundary", async () => {
  const post = (contentType: string, body: Uint8Array) =>
    fetch(`http://127.0.0.1:${node.port}/dicom-web/studies`, {
      method: "POST",
      headers: { "Content-Type": contentType, Authorization: `Bearer ${node.token}` },
      body: new Blob([body as Uint8Array<ArrayBuffer>]),
    });
  const part = buildMultipart([new Uint8Array(10)], "b");
  for (const [contentType, body] of [
    ["application/dicom", new Uint8Array(10)],
    ['multipart/related; type="application/dicom"', part],
    ['multipart/related; type="application/dicom"; boundary=b', part.subarray(0, part.length - 8)],
  ] as const) {
    const res = await post(contentType, body);
    assert.equal(res.status, 400, contentType);
    assert.equal(((await res.json()) as { code: string }).code, "DLN_ERR_STOW_INVALID", contentType);
  }
});
