import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { defaultWorker } from "../src/jobs/identity.js";
import type { JobStore, WorkerIdentity } from "../src/jobs/jobStore.js";
import { openJobStore } from "../src/jobs/openStore.js";
import { newUid } from "../src/outputs/uid.js";
import { startPostgres, type TestPostgres } from "./postgres.js";
import { tempDir } from "./tempDir.js";

/** Which store the store-dependent suites run against: DELINEATE_TEST_STORE=postgres, or sqlite (the default). */
export const TEST_STORE: "sqlite" | "postgres" =
  process.env.DELINEATE_TEST_STORE === "postgres" ? "postgres" : "sqlite";

/** A job store for one test, of the kind DELINEATE_TEST_STORE names. */
export interface TestStore {
  store: JobStore;
  /** the store's URL (sqlite:<file> or postgres://…), for a node or a second handle */
  url: string;
  /** the same store opened again, as after a restart or by another worker */
  reopen(worker?: Partial<WorkerIdentity>): Promise<JobStore>;
  /** closes every handle and removes what the store left behind */
  dispose(): Promise<void>;
}

let server: Promise<TestPostgres> | undefined;

/** The throw-away PostgreSQL this test process shares (one server, a database per store), started on first use. */
export function testPostgres(): Promise<TestPostgres> {
  server ??= startPostgres();
  return server;
}

/** Stops the shared PostgreSQL, if one was started: call it from the suite's `after`. */
export async function stopTestPostgres(): Promise<void> {
  const s = server;
  server = undefined;
  if (s) await (await s).stop();
}

/** A store URL of the DELINEATE_TEST_STORE kind, and the folder to remove afterwards (SQLite). */
export async function testStoreUrl(): Promise<{ url: string; dir?: string }> {
  if (TEST_STORE === "postgres") return { url: await (await testPostgres()).createDatabase() };
  const dir = tempDir("store-");
  return { url: `sqlite:${path.join(dir, "delineate.sqlite")}`, dir };
}

export async function testStore(
  uid: () => string = () => newUid("2.25"),
  worker: Partial<WorkerIdentity> = {},
): Promise<TestStore> {
  const { url, dir } = await testStoreUrl();
  const handles: JobStore[] = [];
  const open = async (w: Partial<WorkerIdentity> = worker) => {
    const s = await openJobStore(url, tmpdir(), uid, { ...defaultWorker(), ...w });
    handles.push(s);
    return s;
  };
  const store = await open();
  return {
    store,
    url,
    reopen: open,
    async dispose() {
      for (const h of handles) await h.close().catch(() => {});
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
