/**
 * `npm run bench:store`: claims + completions per second through each job store (no-op jobs), for 1, 4 and 16
 * concurrent workers (each its own store handle, as separate processes would have), on SQLite and on a throw-away
 * PostgreSQL on this machine. Writes bench/STORE.md's figures into bench/results.json with the machine.
 */

import { startPostgres, type TestPostgres } from "../harness/postgres.js";
import { testStore } from "../harness/store.js";
import { defaultWorker } from "../src/jobs/identity.js";
import type { JobStore, WorkerIdentity } from "../src/jobs/jobStore.js";
import { openJobStore } from "../src/jobs/openStore.js";
import { newUid } from "../src/outputs/uid.js";
import { machineFacts, mergeResults, runBench } from "./record.js";

const JOBS = 2000;

/** Drains JOBS route jobs through `workers` handles; claims + completions per second. */
async function drain(kind: "sqlite" | "postgres", workers: number, server: TestPostgres): Promise<number> {
  const uid = () => newUid("2.25");
  const t =
    kind === "sqlite"
      ? await testStore(uid)
      : await (async () => {
          const url = await server.createDatabase();
          const open = (w: Partial<WorkerIdentity> = {}) => openJobStore(url, "", uid, { ...defaultWorker(), ...w });
          const store = await open();
          const handles = [store];
          return {
            store,
            reopen: async (w: Partial<WorkerIdentity> = {}) => {
              const h = await open(w);
              handles.push(h);
              return h;
            },
            dispose: async () => {
              for (const h of handles) await h.close();
            },
          };
        })();
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
  // SQLite runs with synchronous FULL, as the node does; PostgreSQL with its defaults (fsync on), on this machine
  const server = await startPostgres({ durable: true });
  try {
    for (const kind of ["sqlite", "postgres"] as const) {
      figures[kind] = {};
      for (const workers of [1, 4, 16]) {
        const perSecond = await drain(kind, workers, server);
        figures[kind][`workers${workers}`] = perSecond;
        process.stdout.write(`${kind}\t${workers} workers\t${perSecond} claims+completions/s\n`);
      }
    }
  } finally {
    await server.stop();
  }
  mergeResults({ store: { jobs: JOBS, claimsAndCompletionsPerSecond: figures, machine: machineFacts() } });
});
