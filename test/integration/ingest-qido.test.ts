import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, it } from "node:test";
import { str } from "../../src/dicom/dataset.js";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { DicomWebClient } from "../../src/pacs/dicomweb.js";
import { type NodeProcess, startNodeProcess } from "../helpers/nodeProcess.js";
import { startOrthanc, type TestOrthanc, waitFor } from "../helpers/orthanc.js";
import { stopTestPostgres } from "../helpers/store.js";
import { storescu, tempDir } from "../helpers/tools.js";

let orthanc: TestOrthanc;
let node: NodeProcess;
let work: string;

before(async () => {
  work = tempDir("qido-");
  orthanc = await startOrthanc();
  // the change feed off: only QIDO-RS, as against a DICOMweb server that is not Orthanc
  node = await startNodeProcess(orthanc, path.join(work, "data"), {
    logFile: path.join(work, "node.log"),
    ingest: { changeFeed: false, webhook: false, qido: { enabled: true, lookbackDays: 1, quietSeconds: 2 } },
  });
});

after(async () => {
  await node?.stop();
  await orthanc?.stop();
  await stopTestPostgres();
});

it("QIDO-RS polling finds a study, waits for it to be quiet, and queues it once", { timeout: 180_000 }, async () => {
  const s = writePhantomSeries(path.join(work, "study"), {
    size: 64,
    slices: 10,
    pixelSpacing: 6,
    sliceSpacing: 4,
    patientName: "Qido^Quinn",
    patientID: "QIDO-1",
  });
  await storescu(orthanc.dicomPort, orthanc.aet, path.join(work, "study"));
  const [job] = await waitFor("the job", () => node.settled(s.studyInstanceUID), 120_000, 250);
  assert.equal(job?.state, "done", JSON.stringify(job));
  const pacs = new DicomWebClient({
    url: orthanc.url,
    dicomWebRoot: "/dicom-web",
    username: orthanc.username,
    password: orthanc.password,
    timeoutMs: 30_000,
  });
  assert.equal((await pacs.searchSeries(s.studyInstanceUID)).filter((x) => str(x, "Modality") === "SEG").length, 1);
  // Our SEG changed the study's instance count, so once quiet the study is announced and routed again; that makes
  // no second segment job.
  await waitFor(
    "the study to be routed again",
    async () => {
      const [route] = await node.jobs(s.studyInstanceUID, "route");
      return route && route.updatedAt > job!.updatedAt && route.state === "done" ? route : undefined;
    },
    60_000,
    250,
  );
  assert.equal((await node.jobs(s.studyInstanceUID, "segment")).length, 1);
  const log = readFileSync(node.logFile, "utf8");
  assert.match(log, /studies announced by QIDO-RS polling/);
  assert.doesNotMatch(log, /studies announced by the change feed/);
  assert.doesNotMatch(log, /Qido\^Quinn|QIDO-1/, "no patient name or ID in the log");
});
