/**
 * `npm run bench:store`: claims + completions per second through each job store (no-op jobs), for 1, 4 and 16
 * concurrent workers (each its own store handle, as separate processes would have), on SQLite and on a throw-away
 * PostgreSQL on this machine. Writes bench/STORE.md's figures into bench/results.json with the machine.
 */
import { defaultWorker } from "../src/jobs/identity.js";
import type { JobStore } from "../src/jobs/jobStore.js";
import { newUid } from "../src/outputs/uid.js";
import { stopTestPostgres, testStore } from "../test/helpers/store.js";
import { machineFacts, mergeResults, runBench } from "./record.js";

const JOBS = 2000;

/** Drains JOBS route jobs through `workers` handles; claims + completions per second. */
async function drain(kind: "sqlite" | "postgres", workers: number): Promise<number> {
  process.env.DELINEATE_TEST_STORE = kind;
  const t = await testStore(() => newUid("2.25"));
  try {
    await t.store.enqueue(Array.from({ length: JOBS }, (_, i) => `1.2.${i}`));
    const handles: JobStore[] = [t.store];
    for (let i = 1; i < workers; i++) handles.push(await t.reopen({ ...defaultWorker(), workerId: `bench:${i}` }));
    let done = 0;
    const t0 = performance.now();
    await Promise.all(
      handles.map(async (h) => {
        for (let job = await h.claimNext(); job; job = await h.claimNext()) {
          await h.complete(job, { kind: "route", timings: {}, decisions: [], jobs: [] });
          done++;
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    if (done !== JOBS) throw new Error(`${done} of ${JOBS} jobs done`);
    return Math.round((2 * JOBS) / seconds);
  } finally {
    await t.dispose();
  }
}

runBench(async () => {
  const figures: Record<string, Record<string, number>> = {};
  try {
    for (const kind of ["sqlite", "postgres"] as const) {
      figures[kind] = {};
      for (const workers of [1, 4, 16]) {
        const perSecond = await drain(kind, workers);
        figures[kind][`workers${workers}`] = perSecond;
        process.stdout.write(`${kind}\t${workers} workers\t${perSecond} claims+completions/s\n`);
      }
    }
  } finally {
    await stopTestPostgres();
  }
  mergeResults({ store: { jobs: JOBS, claimsAndCompletionsPerSecond: figures, machine: machineFacts() } });
});
