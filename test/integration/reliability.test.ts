import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { writeBodyModelRunningItsNetwork } from "../../harness/bodyModel.js";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { type NodeProcess, startNodeProcess } from "../helpers/nodeProcess.js";
import { type TestOrthanc, waitFor } from "../helpers/orthanc.js";
import { finishedSegmentJob, logEntries, type PacsRig, startPacsRig } from "../helpers/pacsRig.js";
import { stopTestPostgres, TEST_STORE } from "../helpers/store.js";
import { storescu } from "../helpers/tools.js";

/** Nothing lost, nothing duplicated: bursts, a crash during inference, a PACS outage. Generated studies only. */
describe("reliability against a real Orthanc", { concurrency: false }, () => {
  let orthanc: TestOrthanc;
  let node: NodeProcess;
  let work: string;
  let segCount: PacsRig["segCount"];

  const finished = (study: string) => finishedSegmentJob(node, study, 300_000, 250);
  /** the study's segment job, once it has logged the message */
  const logged = (study: string, message: "job started" | "inference started") =>
    waitFor(
      `the segment job to log "${message}"`,
      async () => {
        const [job] = await node.jobs(study, "segment");
        return job && logEntries(node.logFile).some((e) => e.jobId === job.id && e.message === message)
          ? job
          : undefined;
      },
      120_000,
      20,
    );
  const phantom = (name: string, size: number, slices: number) =>
    writePhantomSeries(path.join(work, name), {
      size,
      slices,
      pixelSpacing: (256 / size) * 1.5,
      sliceSpacing: 3,
      patientName: `Reliability^${name}`,
      patientID: `REL-${name}`,
    });

  before(async () => {
    ({ work, orthanc, segCount } = await startPacsRig("reliability-"));
    // patient enough for a 20 s outage: waits of about 1, 2, 4, 8, 16 s before giving up
    node = await startNodeProcess(orthanc, path.join(work, "data"), {
      logFile: path.join(work, "node.log"),
      jobs: { maxAttempts: 8, retryBaseSeconds: 1 },
      // the kill and the cancel land while the network runs
      configure: (c) => {
        c.model = writeBodyModelRunningItsNetwork(path.join(work, "models"));
      },
    });
  });

  after(async () => {
    await node?.stop();
    await orthanc?.stop();
    await stopTestPostgres();
  });

  it("processes 30 studies sent at once, each with exactly one SEG", { timeout: 600_000 }, async () => {
    const studies = Array.from(
      { length: 30 },
      (_, i) => phantom(`burst/s${String(i).padStart(2, "0")}`, 48, 10).studyInstanceUID,
    );
    await storescu(orthanc.dicomPort, orthanc.aet, path.join(work, "burst"));
    for (const study of studies) {
      const job = await finished(study);
      assert.equal(job?.state, "done", `${study}: ${JSON.stringify(job?.error)}`);
    }
    const counts = await Promise.all(studies.map(segCount));
    assert.deepEqual(
      counts,
      studies.map(() => 1),
    );
  });

  it("finishes a job whose node was killed (SIGKILL) during inference, with exactly one SEG", {
    timeout: 300_000,
  }, async () => {
    const { studyInstanceUID: study } = phantom("killed", 256, 160);
    await storescu(orthanc.dicomPort, orthanc.aet, path.join(work, "killed"));
    const running = await logged(study, "inference started");
    await node.stop("SIGKILL");
    await node.start();
    const job = await finished(study);
    assert.equal(job?.state, "done", JSON.stringify(job?.error));
    assert.equal(job.id, running.id);
    assert.equal(job.attempts, 2, "picked up again after the crash, not started afresh");
    assert.equal(await segCount(study), 1);
    if (TEST_STORE === "sqlite")
      assert.ok(
        logEntries(node.logFile).some((e) => e.message === "jobs interrupted by a previous stop were queued again"),
      );
    else assert.equal(job.attemptLog?.length, 2, "a shared store hands it over once the dead attempt's lease expired");
  });

  it("stops a job cancelled through the API during inference, storing nothing", { timeout: 300_000 }, async () => {
    const { studyInstanceUID: study } = phantom("cancelled", 256, 160);
    await storescu(orthanc.dicomPort, orthanc.aet, path.join(work, "cancelled"));
    const running = await logged(study, "inference started");
    const res = await fetch(`http://127.0.0.1:${node.port}/api/jobs/${running.id}/cancel`, {
      method: "POST",
      headers: { Authorization: `Bearer ${node.token}` },
    });
    assert.equal(res.status, 202);
    const job = await finished(study);
    assert.equal(job?.state, "cancelled", JSON.stringify(job));
    assert.equal(job.error?.code, "DLN_ERR_CANCELLED");
    assert.equal(await segCount(study), 0, "nothing stored");
  });

  it("logged none of the patients' names or IDs through the burst, the crash and the cancel", () => {
    const log = readFileSync(node.logFile, "utf8");
    assert.ok(log.length > 1000);
    assert.doesNotMatch(log, /Reliability|REL-/);
  });

  it("waits out a 20 s PACS outage mid-job and completes, losing nothing", { timeout: 300_000 }, async () => {
    const { studyInstanceUID: study } = phantom("outage", 256, 160);
    await storescu(orthanc.dicomPort, orthanc.aet, path.join(work, "outage"));
    // Freeze the node as the segment job starts, take the PACS down, let the node go on: the rest of the job's path
    // (the check for an earlier result, fetch, store) meets a dead PACS.
    await logged(study, "job started");
    node.signal("SIGSTOP");
    await orthanc.stop();
    node.signal("SIGCONT");
    await new Promise((r) => setTimeout(r, 20_000));
    await orthanc.start();
    const job = await finished(study);
    assert.equal(job?.state, "done", JSON.stringify(job?.error));
    assert.equal(await segCount(study), 1);
    assert.equal((await node.api("/healthz")).status, 200);
    assert.ok(
      logEntries(node.logFile).some(
        (e) => e.jobId === job.id && e.code === "DLN_ERR_PACS_UNAVAILABLE" && e.message === "job will be retried",
      ),
      "the job waited and retried",
    );
  });
});
