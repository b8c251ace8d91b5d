/**
 * The second half of `npm run bench:store`: end-to-end studies per minute through one PostgreSQL with 1 and then 2
 * worker processes (plus one ingest/api node), on this machine. Each run gets a fresh database and a fresh burst of
 * phantom studies in the same Orthanc. Written into bench/results.json under "storeEndToEnd".
 */
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { type NodeProcess, startNodeProcess } from "../harness/nodeProcess.js";
import { startOrthanc, waitFor } from "../harness/orthanc.js";
import { startPostgres, type TestPostgres } from "../harness/postgres.js";
import { tempDir } from "../harness/tempDir.js";
import { storescu } from "../harness/tools.js";
import { writePhantomSeries } from "../src/fixtures/phantom.js";
import type { Job } from "../src/jobs/job.js";
import { machineFacts, mergeResults, runBench } from "./record.js";

const STUDIES = Number(process.env.BENCH_STUDIES ?? 12);
const SIZE = 128,
  SLICES = 40;

async function run(pg: TestPostgres, work: string, workers: number): Promise<number> {
  const dir = path.join(work, `w${workers}`);
  mkdirSync(dir, { recursive: true });
  const storeUrl = await pg.createDatabase();
  // an Orthanc of its own: a fresh store reads the change feed from its start, and must see this run's studies only
  const orthanc = await startOrthanc();
  const nodes: NodeProcess[] = [];
  try {
    const ingest = await startNodeProcess(orthanc, path.join(dir, "ingest"), {
      logFile: path.join(dir, "ingest.log"),
      storeUrl,
      roles: "ingest,api",
    });
    nodes.push(ingest);
    for (let i = 0; i < workers; i++)
      nodes.push(
        await startNodeProcess(orthanc, path.join(dir, `worker${i}`), {
          logFile: path.join(dir, `worker${i}.log`),
          storeUrl,
          roles: "worker",
        }),
      );
    for (let i = 0; i < STUDIES; i++)
      writePhantomSeries(path.join(dir, "studies", `s${i}`), {
        size: SIZE,
        slices: SLICES,
        pixelSpacing: 1.5,
        sliceSpacing: 3,
        patientName: "Bench^Store",
        patientID: `BS-${workers}-${i}`,
      });
    await storescu(orthanc.dicomPort, orthanc.aet, path.join(dir, "studies"));
    const jobs = await waitFor(
      "every job to finish",
      async () => {
        const all = (await (await ingest.api("/api/jobs?kind=segment")).json()) as Job[];
        return all.length === STUDIES && all.every((j) => j.state === "done") ? all : undefined;
      },
      1_800_000,
      250,
    );
    const routes = (await (await ingest.api("/api/jobs?kind=route")).json()) as Job[];
    const seconds = (Math.max(...jobs.map((j) => j.updatedAt)) - Math.min(...routes.map((j) => j.createdAt))) / 1000;
    return Math.round((STUDIES / (seconds / 60)) * 10) / 10;
  } finally {
    for (const n of nodes) await n.stop();
    await orthanc.stop();
  }
}

runBench(async () => {
  const work = tempDir("bench-store-");
  const pg = await startPostgres({ durable: true });
  try {
    const perMinute: Record<string, number> = {};
    for (const workers of [1, 2]) {
      perMinute[`workers${workers}`] = await run(pg, work, workers);
      process.stdout.write(`${workers} worker process(es): ${perMinute[`workers${workers}`]} studies/min\n`);
    }
    mergeResults({
      storeEndToEnd: { studies: STUDIES, studySize: `${SIZE}×${SIZE}×${SLICES}`, perMinute, machine: machineFacts() },
    });
  } finally {
    await pg.stop();
    rmSync(work, { recursive: true, force: true });
  }
});
