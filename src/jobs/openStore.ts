import path from "node:path";
import { DelineateError } from "../errors.js";
import type { Logger } from "../log.js";
import type { JobStore, WorkerIdentity } from "./jobStore.js";
import { PostgresJobStore } from "./postgresStore.js";
import { SqliteJobStore } from "./sqliteStore.js";

/** The store a URL names: "sqlite:<path>" or "postgres://…"; absent, delineate.sqlite in the data folder. */
export async function openJobStore(
  url: string | undefined,
  dataDir: string,
  newUid: () => string,
  worker: WorkerIdentity,
  log?: Logger,
): Promise<JobStore> {
  if (!url) return new SqliteJobStore(path.join(dataDir, "delineate.sqlite"), newUid, worker);
  if (url.startsWith("sqlite:")) return new SqliteJobStore(path.resolve(url.slice("sqlite:".length)), newUid, worker);
  if (/^postgres(ql)?:\/\//.test(url)) return PostgresJobStore.open(url, newUid, worker, log);
  throw new DelineateError("DLN_ERR_CONFIG_INVALID", 'store.url must be "sqlite:<path>" or "postgres://…"');
}
