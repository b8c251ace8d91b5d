import { existsSync } from "node:fs";
import { DelineateError } from "../errors.js";
import { defaultWorker } from "./identity.js";
import type { StoreRows } from "./jobStore.js";
import { PostgresJobStore, redact } from "./postgresStore.js";
import { SqliteJobStore } from "./sqliteStore.js";

/**
 * `delineate store migrate --from sqlite:<path> --to postgres://…`: a site that outgrows one node keeps its history.
 * Every job (with its output UIDs, so a result already stored is still recognised), the ingest cursors and the
 * QIDO/STOW bookkeeping are copied in one transaction; jobs the stopped node left running are queued again first.
 * Stop the node before; the copy can be run again (rows already there are kept).
 */
export async function migrateStore(
  from: string,
  to: string,
  newUid: () => string,
): Promise<Record<keyof StoreRows, number>> {
  if (!from.startsWith("sqlite:") || !/^postgres(ql)?:\/\//.test(to))
    throw new DelineateError(
      "DLN_ERR_CONFIG_INVALID",
      `store migrate copies sqlite:<path> into postgres://…, not ${redact(from)} into ${redact(to)}`,
    );
  const file = from.slice("sqlite:".length);
  if (!existsSync(file)) throw new DelineateError("DLN_ERR_CONFIG_INVALID", `no SQLite job store at ${file}`);
  const source = new SqliteJobStore(file, newUid, defaultWorker());
  let rows: StoreRows;
  try {
    await source.recoverInterrupted();
    rows = await source.exportRows();
  } finally {
    await source.close();
  }
  const target = await PostgresJobStore.open(to, newUid, defaultWorker());
  try {
    return await target.importRows(rows);
  } finally {
    await target.close();
  }
}
