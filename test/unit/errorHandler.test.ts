import assert from "node:assert/strict";
import { it } from "node:test";
import { gzipSync } from "node:zlib";
import request from "supertest";
import { createLogger } from "../../src/log.js";
import { createApp } from "../../src/server/app.js";
import { webhookRouter } from "../../src/server/webhook.js";
import { testStore } from "../helpers/store.js";

it("answers every failure as JSON { code, message } with its status, never a stack or a path", async () => {
  const t = await testStore();
  const log = createLogger({ level: "error", silent: true });
  // a store whose get fails as a bug would, with a path in its message
  const store = new Proxy(t.store, {
    get: (target, key, receiver) =>
      key === "get"
        ? async () => {
            throw new Error(`ENOENT: ${process.cwd()}/var/secret.db`);
          }
        : Reflect.get(target, key, receiver),
  });
  const app = createApp({
    store,
    apiToken: "t",
    log,
    health: () => ({}),
    apiRouters: { "/webhook": webhookRouter({ announce: async () => 1, log }) },
  });
  const auth = { Authorization: "Bearer t" };
  const hook = () => request(app).post("/api/webhook/stable-study").set(auth);
  const cases: [string, request.Test, number, string][] = [
    [
      "malformed JSON",
      hook().set("Content-Type", "application/json").send('{"StudyInstanceUID": "1.2'),
      400,
      "DLN_ERR_REQUEST_INVALID",
    ],
    [
      "a bad charset",
      hook().set("Content-Type", "application/json; charset=klingon").send("{}"),
      415,
      "DLN_ERR_REQUEST_INVALID",
    ],
    [
      "an unknown content encoding",
      hook().set("Content-Type", "application/json").set("Content-Encoding", "zork").send("{}"),
      415,
      "DLN_ERR_REQUEST_INVALID",
    ],
    [
      "a malformed % escape in a route parameter",
      request(app).get("/api/jobs/%E0%A4%A").set(auth),
      400,
      "DLN_ERR_REQUEST_INVALID",
    ],
    ["an unknown path", request(app).get("/api/nothing").set(auth), 404, "DLN_ERR_REQUEST_INVALID"],
    ["a bug in a handler", request(app).get("/api/jobs/x").set(auth), 500, "DLN_ERR_INTERNAL"],
  ];
  // supertest serialises a Buffer body as JSON: the bomb goes through a real socket
  const server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const port = (server.address() as { port: number }).port;
  const bomb = await fetch(`http://127.0.0.1:${port}/api/webhook/stable-study`, {
    method: "POST",
    headers: { ...auth, "Content-Type": "application/json", "Content-Encoding": "gzip" },
    body: gzipSync(Buffer.alloc(10 * 2 ** 20, 0x20)), // 10 MB of spaces in 10 kB
  });
  server.close();
  const bombText = await bomb.text();
  assert.equal(bomb.status, 413, bombText);
  assert.deepEqual(JSON.parse(bombText), {
    code: "DLN_ERR_REQUEST_INVALID",
    message: "the request body (after decompression) is over the limit",
  });
  for (const [what, req, status, code] of cases) {
    const res = await req;
    assert.equal(res.status, status, `${what}: ${res.text}`);
    assert.match(String(res.headers["content-type"]), /^application\/json/, what);
    assert.deepEqual(Object.keys(res.body).sort(), ["code", "message"], what);
    assert.equal(res.body.code, code, what);
    assert.doesNotMatch(res.text, /\bat \w|node_modules|\/work\/|\.js:\d|secret|1\.2/, `${what}: ${res.text}`);
  }
});

it("answers the API's own refusals in the same { code, message } shape", async () => {
  const t = await testStore();
  const app = createApp({ store: t.store, apiToken: "t", health: () => ({}), dryRun: async () => [] });
  const auth = { Authorization: "Bearer t" };
  for (const [req, status, code] of [
    [request(app).get("/api/jobs"), 401, "DLN_ERR_UNAUTHORIZED"],
    [request(app).get("/api/jobs/nope").set(auth), 404, "DLN_ERR_REQUEST_INVALID"],
    [request(app).post("/api/jobs/nope/retry").set(auth), 404, "DLN_ERR_REQUEST_INVALID"],
    [request(app).get("/api/route?study=..").set(auth), 400, "DLN_ERR_UID_INVALID"],
  ] as const) {
    const res = await req;
    assert.equal(res.status, status, res.text);
    assert.deepEqual(Object.keys(res.body).sort(), ["code", "message"], res.text);
    assert.equal(res.body.code, code);
  }
});
