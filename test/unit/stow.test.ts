import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { it } from "node:test";
import request from "supertest";
import { PushedStudies } from "../../src/ingest/pushedStudies.js";
import { createLogger } from "../../src/log.js";
import { buildMultipart } from "../../src/pacs/multipart.js";
import { createApp } from "../../src/server/app.js";
import { stowRouter } from "../../src/server/stow.js";
import { pushedFixture } from "../helpers/pushed.js";
import { testStore } from "../helpers/store.js";

/** An app with STOW-RS on a fresh pushed store; `received` collects the studies it was told of. */
export async function stowApp(options: { pushed?: PushedStudies } = {}) {
  const t = await testStore();
  const received: string[] = [];
  const log = createLogger({ level: "error", silent: true });
  const pushed = options.pushed ?? new PushedStudies(mkdtempSync(path.join(tmpdir(), "delineate-stow-unit-")));
  const app = createApp({
    store: t.store,
    apiToken: "t0ken",
    log,
    health: () => ({}),
    dicomWeb: stowRouter({ pushed, received: async (s) => void received.push(s), maxBodyBytes: 2 ** 30, log }),
  });
  return { app, received, pushed };
}

const multipart = (boundary: string) => `multipart/related; type="application/dicom"; boundary=${boundary}`;

it("takes the bearer scheme in any case (RFC 9110), and refuses a multipart body with no part (400)", async () => {
  const { app, received } = await stowApp();
  const { files } = pushedFixture(1);
  const post = (auth: string, body: Uint8Array) =>
    request(app)
      .post("/dicom-web/studies")
      .set("Authorization", auth)
      .set("Content-Type", multipart("b0undary"))
      .send(Buffer.from(body));
  for (const scheme of ["bearer", "BEARER", "Bearer", "bEaReR"])
    assert.equal((await post(`${scheme} t0ken`, buildMultipart(files, "b0undary"))).status, 200, scheme);
  assert.equal((await post("Bearer wrong", buildMultipart(files, "b0undary"))).status, 401);
  assert.equal((await post("Basic t0ken", buildMultipart(files, "b0undary"))).status, 401);
  const empty = await post("Bearer t0ken", buildMultipart([], "b0undary"));
  assert.equal(empty.status, 400, empty.text);
  assert.equal(empty.body.code, "DLN_ERR_STOW_INVALID");
  assert.equal(received.length, 4, "only the four requests with an instance told of their study");
});
