import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { writeBodyModelRunningItsNetwork } from "../../harness/bodyModel.js";
import { str } from "../../src/dicom/dataset.js";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import type { Job } from "../../src/jobs/job.js";
import { DicomWebClient } from "../../src/pacs/dicomweb.js";
import { type NodeProcess, startNodeProcess } from "../helpers/nodeProcess.js";
import { startOrthanc, type TestOrthanc, waitFor } from "../helpers/orthanc.js";
import { stopTestPostgres, testPostgres } from "../helpers/store.js";
import { storescu, tempDir } from "../helpers/tools.js";

/**
 * Several processes on one PostgreSQL: an ingest + api node and three workers (roles), a real Orthanc. Exactly one
 * result per series however the work is shared, and whatever happens to a worker: killed, or frozen past its lease.
 */
describe("a cluster on one PostgreSQL", { concurrency: false }, () => {
  let orthanc: TestOrthanc;
  let pacs: DicomWebClient;
  let work: string;
  let ingest: NodeProcess;
  const workers: NodeProcess[] = [];
  let ingestStoreUrl = "";

  const workerId = (job: Job) => job.attemptLog?.at(-1)?.workerId;
  const workerOf = (id: string | undefined) => workers.find((w) => id?.endsWith(`:${w.pid()}`));
  const segCount = async (study: string) =>
    (await pacs.searchSeries(study)).filter((s) => str(s, "Modality") === "SEG").length;
  const finished = (study: string) =>
    waitFor(`a finished job for ${study}`, async () => (await ingest.settled(study))?.[0], 300_000, 250);
  const logged = (w: NodeProcess, jobId: string, message: string) =>
    readFileSync(w.logFile, "utf8")
      .split("\n")
      .some((l) => l.includes(jobId) && l.includes(`"message":"${message}"`));
  /** the study's segment job and the worker running it, once that worker has started its inference */
  const inferring = (study: string) =>
    waitFor(
      `the segment job of ${study} to start inference`,
      async () => {
        const [job] = await ingest.jobs(study, "segment");
        const w = job && workerOf(workerId(job));
        return job && w && logged(w, job.id, "inference started") ? { job, worker: w } : undefined;
      },
      120_000,
      50,
    );
  const phantom = (name: string, size: number, slices: number) =>
    writePhantomSeries(path.join(work, name), {
      size,
      slices,
      pixelSpacing: (256 / size) * 1.5,
      sliceSpacing: 3,
      patientName: `Cluster^${name}`,
      patientID: `CLU-${name}`,
    });

  before(async () => {
    work = tempDir("cluster-");
    orthanc = await startOrthanc();
    pacs = new DicomWebClient({
      url: orthanc.url,
      dicomWebRoot: "/dicom-web",
      username: orthanc.username,
      password: orthanc.password,
      timeoutMs: 60_000,
    });
    const storeUrl = await (await testPostgres()).createDatabase();
    ingestStoreUrl = storeUrl;
    ingest = await startNodeProcess(orthanc, path.join(work, "ingest"), {
      logFile: path.join(work, "ingest.log"),
      storeUrl,
      roles: "ingest,api",
    });
    for (const i of [1, 2, 3]) {
      workers.push(
        await startNodeProcess(orthanc, path.join(work, `worker${i}`), {
          logFile: path.join(work, `worker${i}.log`),
          storeUrl,
          roles: "worker",
          // the kill and the freeze land while the network runs
          configure: (c) => {
            c.model = writeBodyModelRunningItsNetwork(path.join(work, "models"));
          },
        }),
      );
    }
  });

  after(async () => {
    for (const w of workers) {
      w.signal("SIGCONT");
      await w.stop();
    }
    await ingest?.stop();
    await orthanc?.stop();
    await stopTestPostgres();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("shares 30 studies sent at once between three workers: each gets exactly one SEG", {
    timeout: 600_000,
  }, async () => {
    const studies = Array.from(
      { length: 30 },
      (_, i) => phantom(`burst/s${String(i).padStart(2, "0")}`, 48, 10).studyInstanceUID,
    );
    await storescu(orthanc.dicomPort, orthanc.aet, path.join(work, "burst"));
    const ran = new Set<string>();
    for (const study of studies) {
      const job = await finished(study);
      assert.equal(job?.state, "done", `${study}: ${JSON.stringify(job)}`);
      assert.equal(job.kind, "segment");
      ran.add(workerId(job) ?? "?");
    }
    assert.deepEqual(
      await Promise.all(studies.map(segCount)),
      studies.map(() => 1),
    );
    assert.ok(ran.size >= 2, `jobs done by ${[...ran].join(", ")}`);
    assert.ok(
      [...ran].every((id) => workerOf(id)),
      "every attempt names its worker (host:pid)",
    );
  });

  it("takes over the job of a worker killed (SIGKILL) during inference once its lease expires", {
    timeout: 300_000,
  }, async () => {
    const { studyInstanceUID: study } = phantom("killed", 256, 160);
    await storescu(orthanc.dicomPort, orthanc.aet, path.join(work, "killed"));
    const { job: running, worker } = await inferring(study);
    await worker.stop("SIGKILL");
    const job = await finished(study);
    assert.equal(job?.state, "done", JSON.stringify(job));
    assert.equal(job.id, running.id);
    assert.equal(job.attempts, 2);
    assert.notEqual(workerId(job), workerId(running), "another worker finished it");
    assert.equal(await segCount(study), 1);
    await worker.start(); // back to three for the next test
  });

  it("fences out a worker frozen (SIGSTOP) past its lease: resumed, it writes and stores nothing", {
    timeout: 300_000,
  }, async () => {
    const { studyInstanceUID: study } = phantom("frozen", 256, 160);
    await storescu(orthanc.dicomPort, orthanc.aet, path.join(work, "frozen"));
    const { job: running, worker } = await inferring(study);
    worker.signal("SIGSTOP");
    const job = await finished(study);
    assert.equal(job?.state, "done", JSON.stringify(job));
    assert.notEqual(workerId(job), workerId(running), "another worker took it over");
    worker.signal("SIGCONT");
    await waitFor(
      "the resumed worker to find it lost the job",
      async () => logged(worker, running.id, "job taken over by another worker; this attempt stops without writing"),
      120_000,
      250,
    );
    const after = await ingest.jobs(study, "segment");
    assert.deepEqual(after, [job], "the late worker changed nothing on the job");
    assert.equal(await segCount(study), 1, "and stored nothing");
  });

  it("rides out a PostgreSQL restart during a run: nodes reconnect by themselves and nothing is lost", {
    timeout: 600_000,
  }, async () => {
    const studies = Array.from({ length: 6 }, (_, i) => phantom(`restart/s${i}`, 128, 60).studyInstanceUID);
    await storescu(orthanc.dicomPort, orthanc.aet, path.join(work, "restart"));
    const first = studies[0] ?? "";
    await inferring(first);
    await (await testPostgres()).restart();
    for (const study of studies) {
      const job = await finished(study);
      assert.equal(job?.state, "done", `${study}: ${JSON.stringify(job)}`);
    }
    assert.deepEqual(
      await Promise.all(studies.map(segCount)),
      studies.map(() => 1),
    );
  });

  it("shows the cluster in /healthz and /metrics: nodes alive, queue depth, takeovers", async () => {
    const health = (await (await ingest.api("/healthz", null)).json()) as {
      cluster: { nodes: { alive: boolean; roles: string[] }[]; takenOver: number; queued: Record<string, number> };
    };
    const alive = health.cluster.nodes.filter((n) => n.alive);
    assert.equal(alive.length, 4, JSON.stringify(health.cluster));
    assert.equal(alive.filter((n) => n.roles.includes("worker")).length, 3);
    assert.ok(health.cluster.takenOver >= 2, "the killed and the frozen workers' jobs");
    const metrics = await (await ingest.api("/metrics", null)).text();
    assert.match(metrics, /^delineate_cluster_nodes_alive 4$/m);
    assert.match(metrics, /^delineate_jobs_taken_over [2-9]\d*$/m);
  });

  it("polls from one ingest node at a time, and hands over when it dies", { timeout: 300_000 }, async () => {
    const second = await startNodeProcess(orthanc, path.join(work, "ingest2"), {
      logFile: path.join(work, "ingest2.log"),
      storeUrl: ingestStoreUrl,
      roles: "ingest,api",
    });
    const says = (n: NodeProcess, message: string) =>
      readFileSync(n.logFile, "utf8").includes(`"message":"${message}"`);
    try {
      await waitFor(
        "the second node to defer",
        async () => says(second, "another node leads ingest polling") || undefined,
        30_000,
        100,
      );
      assert.ok(!says(second, "leading ingest polling"), "only the first polls");
      await ingest.stop("SIGKILL");
      // the lock goes with the dead node's connection: the wait below bounds liveness, it does not time the handover
      await waitFor(
        "the second node to take the lead",
        async () => says(second, "leading ingest polling") || undefined,
        30_000,
        100,
      );
      ingest = second;
      const { studyInstanceUID: study } = phantom("handover", 48, 10);
      await storescu(orthanc.dicomPort, orthanc.aet, path.join(work, "handover"));
      const job = await finished(study);
      assert.equal(job?.state, "done");
      assert.equal(await segCount(study), 1);
    } finally {
      if (ingest !== second) await second.stop();
    }
  });

  it("logged none of the patients' names or IDs", () => {
    for (const w of [ingest, ...workers]) assert.doesNotMatch(readFileSync(w.logFile, "utf8"), /Cluster\^|CLU-/);
  });
});
