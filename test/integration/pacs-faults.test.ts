import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { type FaultProxy, type FaultRule, startFaultProxy } from "../helpers/faultProxy.js";
import { type NodeProcess, startNodeProcess } from "../helpers/nodeProcess.js";
import type { TestOrthanc } from "../helpers/orthanc.js";
import { finishedSegmentJob, logEntries, type PacsRig, startPacsRig } from "../helpers/pacsRig.js";
import { storescu } from "../helpers/tools.js";

/**
 * A PACS that misbehaves: the node talks to a real Orthanc through a proxy that spoils the segment job's WADO-RS
 * retrieve of one study per test. What is transient is retried, what is refused fails the job at once.
 */
describe("a misbehaving PACS, through a fault-injecting proxy in front of a real Orthanc", {
  concurrency: false,
}, () => {
  let orthanc: TestOrthanc;
  let proxy: FaultProxy;
  let node: NodeProcess;
  let segCount: PacsRig["segCount"];
  let work: string;

  const finished = (study: string) => finishedSegmentJob(node, study, 180_000, 100);
  const retriedLogs = (jobId: string) =>
    logEntries(node.logFile).filter((e) => e.jobId === jobId && e.message === "job will be retried");
  /** a small CT sent to Orthanc, with the fault set on its series' WADO-RS retrieve (not its metadata) */
  const sendWithFault = async (name: string, fault: Pick<FaultRule, "fault" | "times">) => {
    const dir = path.join(work, name);
    const { studyInstanceUID: study } = writePhantomSeries(dir, {
      size: 48,
      slices: 10,
      pixelSpacing: 8,
      sliceSpacing: 3,
      patientName: `Faults^${name}`,
      patientID: `FLT-${name}`,
    });
    const rule = proxy.add({
      method: "GET",
      path: new RegExp(`^/dicom-web/studies/${study}/series/[^/?]+$`),
      ...fault,
    });
    await storescu(orthanc.dicomPort, orthanc.aet, dir);
    return { study, rule };
  };

  before(async () => {
    ({ work, orthanc, segCount } = await startPacsRig("pacs-faults-"));
    proxy = await startFaultProxy(orthanc.url);
    // retries after 0.1-0.3 s, then 0.2-0.6 s: fast, and more attempts than any test needs
    node = await startNodeProcess({ ...orthanc, url: proxy.url }, path.join(work, "data"), {
      logFile: path.join(work, "node.log"),
      jobs: { maxAttempts: 3, retryBaseSeconds: 0.2 },
    });
  });

  after(async () => {
    await node?.stop();
    await proxy?.close();
    await orthanc?.stop();
  });

  it("retries a WADO-RS body cut off mid-transfer, and stores exactly one SEG", { timeout: 240_000 }, async () => {
    const { study, rule } = await sendWithFault("cut", { fault: { cutAfterBytes: 8192 }, times: 1 });
    const job = await finished(study);
    assert.equal(rule.spoilt, 1, "the first retrieve's body was cut");
    assert.equal(rule.seen, 2, "retrieved again once");
    assert.equal(job?.state, "done", JSON.stringify(job?.error));
    assert.equal(job.attempts, 2);
    assert.equal(await segCount(study), 1);
    const [retried, ...more] = retriedLogs(job.id);
    assert.equal(more.length, 0);
    assert.equal(retried?.code, "DLN_ERR_PACS_UNAVAILABLE");
    assert.match(String(retried?.error), /broke off while being read/);
  });

  it("retries a 429 (too many requests), and stores exactly one SEG", { timeout: 240_000 }, async () => {
    const { study, rule } = await sendWithFault("busy", { fault: { status: 429 }, times: 1 });
    const job = await finished(study);
    assert.deepEqual([rule.spoilt, rule.seen], [1, 2]);
    assert.equal(job?.state, "done", JSON.stringify(job?.error));
    assert.equal(job.attempts, 2);
    assert.equal(await segCount(study), 1);
    assert.deepEqual(
      retriedLogs(job.id).map((e) => e.code),
      ["DLN_ERR_PACS_UNAVAILABLE"],
    );
  });

  it("fails a job at once, without retrying, on a 400", { timeout: 240_000 }, async () => {
    const { study, rule } = await sendWithFault("refused", { fault: { status: 400 }, times: Number.POSITIVE_INFINITY });
    const job = await finished(study);
    assert.equal(job?.state, "failed", JSON.stringify(job));
    assert.equal(job.attempts, 1);
    assert.equal(job.error?.code, "DLN_ERR_PACS_REJECTED");
    assert.match(job.error?.message ?? "", /answered 400/);
    assert.equal(rule.seen, 1, "asked once");
    assert.equal(retriedLogs(job.id).length, 0);
    assert.equal(await segCount(study), 0);
  });

  it("logged none of the patients' names or IDs", () => {
    assert.doesNotMatch(readFileSync(node.logFile, "utf8"), /Faults|FLT-/);
  });
});
