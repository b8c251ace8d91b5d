import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import request from "supertest";
import { writePart10 } from "../../src/dicom/dataset.js";
import { DICOM_UID_MAX_LENGTH, isDicomUid, SopClass, TransferSyntax } from "../../src/dicom/uids.js";
import { DelineateError } from "../../src/errors.js";
import { PushedStudies } from "../../src/ingest/pushedStudies.js";
import { createLogger } from "../../src/log.js";
import { newUid, uidFromName } from "../../src/outputs/uid.js";
import { createApp } from "../../src/server/app.js";
import { webhookRouter } from "../../src/server/webhook.js";
import { testStore } from "../helpers/store.js";
import { ROOT, tempDir } from "../helpers/tools.js";

describe("the DICOM UID grammar (PS3.5 §9.1)", () => {
  it("takes dotted components of digits without leading zeros (a lone 0 allowed), at most 64 characters", () => {
    for (const uid of [
      "0",
      "1",
      "2.25",
      "1.2.840.10008.5.1.4.1.1.2",
      "1.0.3",
      "0.0",
      "2.25.329800735698586629295641978511506172918",
      `1.${"2".repeat(62)}`, // exactly 64
    ])
      assert.equal(isDicomUid(uid), true, uid);
    assert.equal(`1.${"2".repeat(62)}`.length, DICOM_UID_MAX_LENGTH);
  });
  it("refuses empty components, leading zeros, other characters, more than 64 characters, and non-strings", () => {
    for (const uid of [
      "",
      ".",
      "..",
      "1..2",
      ".1.2",
      "1.2.",
      "01.2",
      "1.02",
      "1.00",
      "00",
      "1.2/3",
      "1.2 ",
      " 1.2",
      "1.2\0",
      "1.2\n",
      "1.2a",
      "-1.2",
      "1,2",
      "１.２", // full-width digits are not DICOM digits
      `1.${"2".repeat(63)}`, // 65
    ])
      assert.equal(isDicomUid(uid), false, JSON.stringify(uid));
    for (const v of [undefined, null, 12, ["1.2"], { uid: "1.2" }]) assert.equal(isDicomUid(v), false, String(v));
  });
  it("every named transfer syntax and SOP class is itself a valid UID, and no two names share one", () => {
    const all = [...Object.values(TransferSyntax), ...Object.values(SopClass)];
    for (const uid of all) assert.ok(isDicomUid(uid), uid);
    assert.equal(new Set(all).size, all.length);
  });
  it("the UIDs Delineate makes are valid", () => {
    for (let i = 0; i < 200; i++) {
      assert.ok(isDicomUid(newUid("2.25")));
      assert.ok(isDicomUid(uidFromName("1.2.826.0.1.3680043.10.1", `name ${i}`)));
    }
  });
});

it("src names DICOM UIDs only in src/dicom/uids.ts: nowhere else a 1.2.840.10008 literal", () => {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      if (statSync(file).isDirectory()) walk(file);
      else if (file.endsWith(".ts") && !file.endsWith(path.join("dicom", "uids.ts")))
        for (const [n, line] of readFileSync(file, "utf8").split("\n").entries())
          if (line.includes("1.2.840.10008")) found.push(`${path.relative(ROOT, file)}:${n + 1}`);
    }
  };
  walk(path.join(ROOT, "src"));
  assert.deepEqual(found, []);
});

describe("every UID the node is given is checked against the one grammar", () => {
  const bad = ["1..2", "01.2", "1.2/3", `1.${"2".repeat(63)}`, "../1.2"];
  const log = createLogger({ level: "error", silent: true });

  it("the webhook and the dry-run route refuse a malformed StudyInstanceUID with 400", async () => {
    const announced: string[] = [];
    const asked: string[] = [];
    const t = await testStore();
    after(() => t.dispose());
    const app = createApp({
      store: t.store,
      apiToken: "t",
      health: () => ({}),
      dryRun: async (study) => {
        asked.push(study);
        return [];
      },
      apiRouters: { "/webhook": webhookRouter({ announce: async (uid) => announced.push(uid), log }) },
    });
    const auth = { Authorization: "Bearer t" };
    for (const uid of bad) {
      const hook = await request(app).post("/api/webhook/stable-study").set(auth).send({ StudyInstanceUID: uid });
      assert.equal(hook.status, 400, uid);
      const route = await request(app).get("/api/route").query({ study: uid }).set(auth);
      assert.equal(route.status, 400, uid);
    }
    assert.deepEqual([announced, asked], [[], []]);
    const good = "1.2.826.0.1.3680043.10.1";
    assert.equal(
      (await request(app).post("/api/webhook/stable-study").set(auth).send({ StudyInstanceUID: good })).status,
      201,
    );
    assert.equal((await request(app).get("/api/route").query({ study: good }).set(auth)).status, 200);
    assert.deepEqual([announced, asked], [[good], [good]]);
  });

  it("STOW-RS keeps no instance whose UIDs break the grammar, as the file has them (never cleaned)", async () => {
    const pushed = new PushedStudies(tempDir("uids-pushed-"));
    const instance = (uids: Record<string, string>) =>
      writePart10({
        SOPClassUID: SopClass.CTImageStorage,
        SOPInstanceUID: "1.2.3.4",
        StudyInstanceUID: "1.2.3",
        SeriesInstanceUID: "1.2.3.1",
        ...uids,
      });
    assert.deepEqual(await pushed.accept(instance({})), {
      study: "1.2.3",
      series: "1.2.3.1",
      sopClass: SopClass.CTImageStorage,
      sop: "1.2.3.4",
      outcome: "stored",
    });
    // dcmjs drops a "/" as it reads ("1.2/3" reads as "1.23"): the value is checked as the file has it
    for (const uid of ["1..2", "01.2", "1.2.", "../1.2", "1.2/3"])
      for (const name of ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"])
        assert.deepEqual(
          ((r) => ("error" in r ? r.error : r))(await pushed.accept(instance({ [name]: uid }))),
          `${name} is missing or not a valid UID`,
          `${name} ${uid}`,
        );
  });
});

it("the DICOMweb client puts no UID that breaks the grammar into a path (.. was every series in the PACS)", async () => {
  const { DicomWebClient } = await import("../../src/pacs/dicomweb.js");
  // a closed port: before the check, the request was made and failed as the PACS being down
  const pacs = new DicomWebClient({
    url: "http://127.0.0.1:9",
    dicomWebRoot: "/dicom-web",
    username: "",
    password: "",
    timeoutMs: 2000,
  });
  const refused = (what: string) => (e: unknown) =>
    e instanceof DelineateError && e.code === "DLN_ERR_UID_INVALID" && e.message.startsWith(what);
  await assert.rejects(pacs.searchSeries(".."), refused("StudyInstanceUID"));
  await assert.rejects(pacs.seriesMetadata("1.2.3", "../.."), refused("SeriesInstanceUID"));
  await assert.rejects(pacs.retrieveSeries("1.2.3", "1.2/3"), refused("SeriesInstanceUID"));
  await assert.rejects(pacs.instanceExists("1.2.3", "1.2&x=1"), refused("SOPInstanceUID"));
  await assert.rejects(pacs.store("1.2.3/..", []), refused("StudyInstanceUID"));
});
