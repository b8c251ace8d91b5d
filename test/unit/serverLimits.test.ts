import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { connect, type Socket } from "node:net";
import { it } from "node:test";
import { PushedStudies } from "../../src/ingest/pushedStudies.js";
import { createLogger } from "../../src/log.js";
import { buildMultipart } from "../../src/pacs/multipart.js";
import { createApp } from "../../src/server/app.js";
import { createNodeServer } from "../../src/server/limits.js";
import { stowRouter } from "../../src/server/stow.js";
import { pushedFixture } from "../helpers/pushed.js";
import { testStore } from "../helpers/store.js";
import { tempDir } from "../helpers/tools.js";

async function startServer(maxConcurrentRequests: number) {
  const t = await testStore();
  const log = createLogger({ level: "error", silent: true });
  const pushed = new PushedStudies(tempDir("limits-"));
  const app = createApp({
    store: t.store,
    apiToken: "t",
    log,
    health: () => ({}),
    dicomWeb: stowRouter({ pushed, received: async () => {}, maxBodyBytes: 2 ** 30, maxConcurrentRequests, log }),
  });
  const server = createNodeServer(app, { headersTimeoutSeconds: 1, requestTimeoutSeconds: 2 });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as AddressInfo).port };
}

/**
 * A raw connection; resolves with what the server sent once it closed. Whether it was our timeout that closed it is
 * told by state, not by a stopwatch: the client below never finishes (headers never end; a 10 kB body trickled at
 * 5 bytes a second needs over half an hour), and Node's defaults (60 s, 300 s) lie beyond the test's own timeout, so
 * a close at all is the configured timeout's.
 */
function rawConnection(port: number, first: string): { socket: Socket; closed: Promise<string> } {
  const socket = connect(port, "127.0.0.1");
  socket.write(first);
  let text = "";
  socket.on("data", (d) => {
    text += d.toString("latin1");
  });
  const closed = new Promise<string>((resolve) => {
    socket.on("close", () => resolve(text));
    socket.on("error", () => {});
  });
  return { socket, closed };
}

const stowHead = (contentLength: number) =>
  "POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n" +
  `Content-Type: multipart/related; type="application/dicom"; boundary=b\r\nContent-Length: ${contentLength}\r\n\r\n`;

it("caps concurrent STOW-RS requests with 429, and cuts off slow headers and slow bodies", {
  timeout: 30_000,
}, async () => {
  const { server, port } = await startServer(2);
  assert.equal(server.headersTimeout, 1000, "the configured header timeout, not Node's 60 s");
  assert.equal(server.requestTimeout, 2000, "the configured request timeout, not Node's 300 s");
  // two requests trickling their bodies hold both slots
  const slow = [rawConnection(port, `${stowHead(10_000)}--b\r\n`), rawConnection(port, `${stowHead(10_000)}--b\r\n`)];
  const trickle = setInterval(() => {
    for (const s of slow) s.socket.write("x");
  }, 200);
  try {
    await new Promise((r) => setTimeout(r, 300));
    const { files } = pushedFixture(1);
    const post = () =>
      fetch(`http://127.0.0.1:${port}/dicom-web/studies`, {
        method: "POST",
        headers: {
          Authorization: "Bearer t",
          "Content-Type": 'multipart/related; type="application/dicom"; boundary=b',
        },
        body: new Blob([buildMultipart(files, "b") as Uint8Array<ArrayBuffer>]),
      });
    const third = await post();
    assert.equal(third.status, 429, "a third request at once is refused");
    assert.ok(third.headers.get("retry-after"));
    assert.equal((await third.json()).code, "DLN_ERR_REQUEST_INVALID");
    // headers sent one line and then nothing: cut at the header timeout (1 s), not after Node's default 60 s
    const headers = rawConnection(port, "POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\n");
    await headers.closed;
    // bodies trickled at 5 bytes a second: cut at the request timeout (2 s), which frees their slots
    await Promise.all(slow.map((s) => s.closed));
    clearInterval(trickle);
    assert.equal((await post()).status, 200, "the slots are free again");
  } finally {
    // a failed assertion must not leave the trickle and its sockets keeping the test process alive
    clearInterval(trickle);
    for (const c of slow) c.socket.destroy();
    server.close();
  }
});
