import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import { DelineateError } from "../../src/errors.js";
import { DEFAULT_VOLUME_OPTIONS } from "../../src/volume/seriesToVolume.js";
import { ROOT, tempDir } from "../helpers/tools.js";

const DEFAULT = path.join(ROOT, "config", "default.json");

describe("configuration", () => {
  it("loads the shipped default, resolving paths against the config folder, and freezes it", () => {
    const c = loadConfig(DEFAULT, {});
    assert.equal(c.model.dir, path.join(ROOT, "models"));
    assert.equal(c.dataDir, path.join(ROOT, "var"));
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.pacs));
  });
  it("gives a file without a volume section the volume options convert uses without reading the file whole", () => {
    const c = loadConfig(DEFAULT, {});
    assert.equal("volume" in JSON.parse(readFileSync(DEFAULT, "utf8")), false, "the shipped default has none");
    assert.deepEqual(c.volume, { ...DEFAULT_VOLUME_OPTIONS });
  });
  it("lets the environment override the file", () => {
    const c = loadConfig(DEFAULT, {
      DELINEATE_PACS_URL: "http://127.0.0.1:9999",
      DELINEATE_PACS_USERNAME: "u",
      DELINEATE_PACS_PASSWORD: "p",
      DELINEATE_DATA_DIR: "/tmp/x",
      DELINEATE_HTTP_PORT: "1234",
      DELINEATE_API_TOKEN: "tok",
    });
    assert.deepEqual(
      [c.pacs.url, c.pacs.username, c.pacs.password, c.dataDir, c.http.port, c.http.apiToken],
      ["http://127.0.0.1:9999", "u", "p", "/tmp/x", 1234, "tok"],
    );
  });
  it("refuses a bad file with the file and every offending field named", () => {
    const dir = tempDir("config-");
    const bad = path.join(dir, "bad.json");
    writeFileSync(
      bad,
      JSON.stringify({ pacs: { url: "not a url" }, dataDir: "x", http: { port: 99999 }, surprise: 1 }),
    );
    assert.throws(
      () => loadConfig(bad, {}),
      (e: unknown) =>
        e instanceof DelineateError &&
        e.code === "DLN_ERR_CONFIG_INVALID" &&
        e.message.includes(bad) &&
        /pacs\.url/.test(e.message) &&
        /http\.port/.test(e.message) &&
        /ingest/.test(e.message) &&
        /surprise/.test(e.message),
    );
    writeFileSync(bad, "{ not json");
    assert.throws(() => loadConfig(bad, {}), /cannot read configuration .*bad\.json/);
    assert.throws(() => loadConfig(path.join(dir, "missing.json"), {}), /cannot read configuration .*missing\.json/);
    assert.throws(() => loadConfig(DEFAULT, { DELINEATE_HTTP_PORT: "eighty" }), /http\.port/);
  });
});

describe("PACS password from a secret file", () => {
  it("reads DELINEATE_PACS_PASSWORD_FILE, trimmed, and names the file when it cannot", () => {
    const dir = tempDir("secret-");
    const secret = path.join(dir, "pacs-password");
    writeFileSync(secret, "s3cret\n");
    assert.equal(loadConfig(DEFAULT, { DELINEATE_PACS_PASSWORD_FILE: secret }).pacs.password, "s3cret");
    assert.throws(
      () => loadConfig(DEFAULT, { DELINEATE_PACS_PASSWORD_FILE: path.join(dir, "absent") }),
      /cannot read the PACS password file .*absent/,
    );
  });
});

describe("routing rules and destinations", () => {
  const write = (dir: string, change: (c: Record<string, any>) => void) => {
    const c = JSON.parse(readFileSync(path.join(ROOT, "config", "routes.example.json"), "utf8"));
    change(c);
    const file = path.join(dir, "config.json");
    writeFileSync(file, JSON.stringify(c));
    return file;
  };
  it("loads the example rules, reading a destination's password file and CA relative to the config", () => {
    const dir = tempDir("routes-");
    writeFileSync(path.join(dir, "research-password"), "r3search\n");
    const c = loadConfig(
      write(dir, () => {}),
      {},
    );
    assert.deepEqual(
      c.routes?.map((r) => [r.name, r.destination, r.outputs]),
      [
        ["body-ct", "pacs", ["seg", "sr", "rtstruct"]],
        ["thorax-research", "research", undefined],
      ],
    );
    assert.equal(c.destinations.research?.password, "r3search");
    assert.equal(c.destinations.research?.caFile, path.join(dir, "research-ca.pem"));
    assert.equal(
      loadConfig(DEFAULT, {}).routes,
      undefined,
      "the default config has no rules: the default rule applies",
    );
  });
  it("refuses rules with an unknown destination, a repeated name, an unknown output, or a destination called pacs", () => {
    const dir = tempDir("routes-");
    const refused = (change: (c: Record<string, any>) => void, why: RegExp) =>
      assert.throws(() => loadConfig(write(dir, change), {}), why);
    const noSecret = (c: Record<string, any>) => delete c.destinations.research.passwordFile;
    refused((c) => {
      noSecret(c);
      c.routes[1].destination = "archive";
    }, /routes\.1\.destination: "archive" is neither "pacs" nor one of destinations \(research\)/);
    refused((c) => {
      noSecret(c);
      c.routes[1].name = "body-ct";
    }, /routes\.1\.name: a second rule named "body-ct"/);
    refused((c) => {
      noSecret(c);
      c.routes[0].outputs = ["seg", "pdf"];
    }, /routes\.0\.outputs\.1/);
    refused((c) => {
      noSecret(c);
      c.routes[0].match.seriesDescription.include = "(unclosed";
    }, /routes\.0\.match\.seriesDescription\.include: not a valid regular expression/);
    refused((c) => {
      noSecret(c);
      c.destinations.pacs = c.destinations.research;
    }, /destinations\.pacs: "pacs" is the source PACS/);
    refused(() => {}, /cannot read the destinations\.research password file .*research-password/);
  });
  it("refuses SOP class UIDs and a UID root that break the DICOM UID grammar", () => {
    const dir = tempDir("routes-");
    const refused = (change: (c: Record<string, any>) => void, why: RegExp) =>
      assert.throws(() => loadConfig(write(dir, change), {}), why);
    for (const bad of ["1..2", "1.2.", "01.2", "1.2/3", `1.${"2".repeat(63)}`]) {
      refused((c) => {
        delete c.destinations.research.passwordFile;
        c.routes[0].match.sopClassUIDs = ["1.2.840.10008.5.1.4.1.1.2", bad];
      }, /routes\.0\.match\.sopClassUIDs\.1: a DICOM UID/);
    }
    for (const bad of ["2.025", "2..25", ".2.25"])
      refused((c) => {
        delete c.destinations.research.passwordFile;
        c.outputs.uidRoot = bad;
      }, /outputs\.uidRoot: a dotted numeric UID root/);
  });
});
