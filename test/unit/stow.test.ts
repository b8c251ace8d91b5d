import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { it } from "node:test";
import type { Express } from "express";
import request from "supertest";
import { parsePart10 } from "../../src/dicom/dataset.js";
import { sweepPushed } from "../../src/ingest/pushedRetention.js";
import { createLogger } from "../../src/log.js";
import { buildMultipart } from "../../src/pacs/multipart.js";
import { pushedFixture, replaceAscii } from "../helpers/pushed.js";
import { stowApp } from "../helpers/stowApp.js";

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
  assert.equal(received.length, 1, "the same instance sent again changes nothing: its study was told once");
});

it("an identical instance sent again is a no-op success; other content under a kept UID is refused (409, 0x0111) unless overwrite", async () => {
  const { files } = pushedFixture(1);
  const a = files[0]!;
  const sop = String(parsePart10(a).dataset.SOPInstanceUID);
  // b: a's UIDs with other pixels and another name
  const b = replaceAscii(a, "Push^Pia", "Push^Pim");
  b[b.length - 1] = (b[b.length - 1]! + 1) & 0xff;
  const send = (app: Express, parts: Uint8Array[]) =>
    request(app)
      .post("/dicom-web/studies")
      .set("Authorization", "Bearer t0ken")
      .set("Content-Type", multipart("b0undary"))
      .send(Buffer.from(buildMultipart(parts, "b0undary")));
  const failedOf = (body: Record<string, { Value: Record<string, { Value: unknown[] }>[] }>) =>
    (body["00081198"]?.Value ?? []).map((f) => [f["00081155"]?.Value[0], f["00081197"]?.Value[0]]);

  const refusing = await stowApp();
  const abA = await send(refusing.app, [a, b, a]); // it was 200 "stored 3", the last one winning
  assert.equal(abA.status, 202, abA.text);
  assert.equal(abA.body["00081199"].Value.length, 2, "a stored, a again a no-op success");
  assert.deepEqual(failedOf(abA.body), [[sop, 0x0111]]);
  const kept = path.join(
    (refusing.pushed as unknown as { root: string }).root,
    String(parsePart10(a).dataset.StudyInstanceUID),
    `${sop}.dcm`,
  );
  assert.ok(Buffer.from(readFileSync(kept)).equals(a), "the first content is kept");
  const later = await send(refusing.app, [b]);
  assert.equal(later.status, 409, "changed content sent later, alone: 409");
  assert.deepEqual(failedOf(later.body), [[sop, 0x0111]]);
  assert.equal((await send(refusing.app, [a])).status, 200, "the same content again: success");
  assert.equal(refusing.received.length, 1, "only the first request changed the study");

  const overwriting = await stowApp({ duplicates: "overwrite" });
  assert.equal((await send(overwriting.app, [a])).status, 200);
  assert.equal((await send(overwriting.app, [b])).status, 200, "overwrite: replaced");
  const kept2 = path.join(
    (overwriting.pushed as unknown as { root: string }).root,
    String(parsePart10(a).dataset.StudyInstanceUID),
    `${sop}.dcm`,
  );
  assert.ok(Buffer.from(readFileSync(kept2)).equals(b), "the new content replaced the old");
  assert.equal(overwriting.received.length, 2, "and the study is routed again");
});

it("answers /healthz while a 128 MB instance is being received, between its chunks, and keeps the instance", {
  timeout: 120_000,
}, async (t) => {
  const { app, pushed, dispose } = await stowApp();
  const { files } = pushedFixture(1);
  // the phantom instance with its Pixel Data (the last element) made 128 MB long
  const template = Buffer.from(files[0]!);
  const at = template.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]));
  const size = 128 * 2 ** 20;
  const big = Buffer.alloc(at + 12 + size, 7);
  template.copy(big, 0, 0, at);
  big.set([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57, 0, 0], at); // (7FE0,0010) OW
  big.writeUInt32LE(size, at + 8);
  const body = buildMultipart([big], "b0undary");
  const server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The upload stalls after every 16 MB until /healthz has answered: the order of events, not a clock, shows the
  // node kept answering while the part grew (before the fix the loop was blocked for seconds at a time, and a 128 MB
  // part took 157 s). How fast is bench:stow's to measure.
  const events: string[] = [];
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let sent = 0;
  const upload = fetch(`${base}/dicom-web/studies`, {
    method: "POST",
    headers: { Authorization: "Bearer t0ken", "Content-Type": multipart("b0undary") },
    body: new ReadableStream({
      async pull(c) {
        if (sent && sent % (16 * 2 ** 20) === 0 && sent < body.length) {
          const health = await fetch(`${base}/healthz`);
          await health.text();
          events.push(`healthz ${health.status} at ${sent / 2 ** 20} MB`);
        }
        if (sent >= body.length) return c.close();
        c.enqueue(body.subarray(sent, sent + 2 ** 20));
        sent += 2 ** 20;
      },
    }),
    duplex: "half",
  } as RequestInit).then(async (res) => {
    events.push(`stow ${res.status}`);
    return res.text();
  });
  const text = await upload;
  delay.disable();
  server.close();
  t.diagnostic(`worst event-loop delay ${(delay.max / 1e6).toFixed(0)} ms (informative; bench:stow measures)`);
  assert.deepEqual(
    events,
    [...[16, 32, 48, 64, 80, 96, 112, 128].map((mb) => `healthz 200 at ${mb} MB`), "stow 200"],
    text,
  );
  const study = String(parsePart10(files[0]!).dataset.StudyInstanceUID);
  const [series] = await pushed.searchSeries(study);
  assert.ok(series, "kept");
  await dispose();
});

it("caps the pushed store's bytes (507 when nothing fits) and deletes pushed studies past their retention", async () => {
  const { files } = pushedFixture(3);
  const one = files[0]!.byteLength;
  const { app, pushed, store } = await stowApp({ maxStoredBytes: one * 2 + 1000 }); // two instances and their framing
  const send = (parts: Uint8Array[]) =>
    request(app)
      .post("/dicom-web/studies")
      .set("Authorization", "Bearer t0ken")
      .set("Content-Type", multipart("b0undary"))
      .send(Buffer.from(buildMultipart(parts, "b0undary")));
  assert.equal((await send([files[0]!])).status, 200);
  assert.equal((await send([files[1]!])).status, 200);
  // chunked (no Content-Length): read, and the instance refused as out of resources; nothing kept, so 507
  const server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const chunked = buildMultipart([files[2]!], "b0undary");
  const full = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/dicom-web/studies`, {
    method: "POST",
    headers: { Authorization: "Bearer t0ken", "Content-Type": multipart("b0undary") },
    body: new ReadableStream({
      start(c) {
        c.enqueue(chunked);
        c.close();
      },
    }),
    duplex: "half",
  } as RequestInit);
  server.close();
  assert.equal(full.status, 507, "nothing kept: 507");
  const fullBody = (await full.json()) as Record<string, { Value: Record<string, { Value: unknown[] }>[] }>;
  assert.equal(fullBody["00081198"]?.Value[0]?.["00081197"]?.Value[0], 0xa700, "out of resources");
  const big = await request(app)
    .post("/dicom-web/studies")
    .set("Authorization", "Bearer t0ken")
    .set("Content-Type", multipart("b0undary"))
    .set("Content-Length", String(one * 3))
    .send(Buffer.alloc(one * 3));
  assert.deepEqual([big.status, big.body.code], [507, "DLN_ERR_STOW_FULL"], "refused on its Content-Length");

  // retention: the study's files go once old enough and no job is queued or running for it
  const log = createLogger({ level: "error", silent: true });
  const study = String(parsePart10(files[0]!).dataset.StudyInstanceUID);
  await store.enqueue([study], undefined, "pushed");
  const now = Date.now();
  assert.deepEqual(await sweepPushed(pushed, store, now + 3_600_000, 60_000, log), [], "a queued job keeps it");
  await store.complete((await store.claimNext())!, { kind: "route", timings: {}, decisions: [], jobs: [] });
  assert.deepEqual(await sweepPushed(pushed, store, now, 60_000, log), [], "too recent");
  assert.deepEqual(await sweepPushed(pushed, store, now + 3_600_000, 60_000, log), [study]);
  assert.equal(pushed.storedBytes(), 0, "its bytes are freed");
  assert.equal((await send([files[2]!])).status, 200, "and there is room again");
});
