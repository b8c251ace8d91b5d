/**
 * `npm run bench:jobs-page`: the cost of one page of `GET /api/jobs` (the store's listPage, a keyset on
 * (created_at, id), newest first) on PostgreSQL with many jobs, with and without migration 5's index on
 * (created_at DESC, id DESC), in the same run: the index is dropped and made again between rounds, so the two sides
 * alternate under the same load. Writes the "jobsPage" entry of bench/results.json with the machine.
 */

import pg from "pg";
import { startPostgres } from "../harness/postgres.js";
import { defaultWorker } from "../src/jobs/identity.js";
import { openJobStore } from "../src/jobs/openStore.js";
import { newUid } from "../src/outputs/uid.js";
import { machineFacts, mergeResults, runBench } from "./record.js";

const JOBS = 200_000;
const PAGE = 100;
const PAGES = 50;
const ROUNDS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? Number.NaN;

runBench(async () => {
  const server = await startPostgres({ durable: true });
  try {
    const url = await server.createDatabase();
    const store = await openJobStore(url, "", () => newUid("2.25"), defaultWorker());
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      // three jobs per millisecond: pages cut through runs of equal created_at, told apart by id
      await db.query(
        `INSERT INTO jobs (id, kind, study_uid, source, state, created_at, updated_at)
         SELECT md5(i::text), 'route', '1.2.' || i, 'pacs', CASE WHEN i % 4 = 0 THEN 'done' ELSE 'queued' END,
           1000 + i / 3, 1000 + i / 3
         FROM generate_series(1, $1::int) AS i`,
        [JOBS],
      );
      await db.query("ANALYZE jobs");
      /** Milliseconds per page, walking PAGES pages from the newest (median of the pages). */
      const walk = async (filter: { state?: "queued" }) => {
        const times: number[] = [];
        let after: { createdAt: number; id: string } | undefined;
        for (let p = 0; p < PAGES; p++) {
          const t0 = performance.now();
          const page = await store.listPage(filter, PAGE, after);
          times.push(performance.now() - t0);
          const last = page.at(-1);
          if (!last) throw new Error(`page ${p} empty`);
          after = { createdAt: last.createdAt, id: last.id };
        }
        return median(times);
      };
      const runs: Record<string, number[]> = { indexAll: [], noIndexAll: [], indexQueued: [], noIndexQueued: [] };
      for (let r = 0; r < ROUNDS; r++) {
        runs.indexAll?.push(await walk({}));
        runs.indexQueued?.push(await walk({ state: "queued" }));
        await db.query("DROP INDEX jobs_page; ANALYZE jobs");
        runs.noIndexAll?.push(await walk({}));
        runs.noIndexQueued?.push(await walk({ state: "queued" }));
        await db.query("CREATE INDEX jobs_page ON jobs (created_at DESC, id DESC); ANALYZE jobs");
      }
      const ms = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, Math.round(median(v) * 100) / 100]));
      const ratio = (a: number | undefined, b: number | undefined) => Math.round(((a ?? 0) / (b ?? 1)) * 10) / 10;
      const result = {
        jobs: JOBS,
        pageSize: PAGE,
        pagesWalked: PAGES,
        rounds: ROUNDS,
        msPerPageMedian: ms,
        withoutIndexOverWith: {
          all: ratio(ms.noIndexAll, ms.indexAll),
          queued: ratio(ms.noIndexQueued, ms.indexQueued),
        },
        machine: machineFacts(),
      };
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      mergeResults({ jobsPage: result });
    } finally {
      await db.end();
      await store.close();
    }
  } finally {
    await server.stop();
  }
});
