import { rmSync } from "node:fs";
import type { JobStore } from "../../src/jobs/jobStore.js";
import { SqliteJobStore } from "../../src/jobs/sqliteStore.js";
import { newUid } from "../../src/outputs/uid.js";
import { tempDir } from "./tools.js";

/** A job store for one test, of the kind DELINEATE_TEST_STORE names (sqlite, the default, or postgres). */
export interface TestStore {
  store: JobStore;
  /** the same store opened again, as after a restart (the previous handle should be closed first) */
  reopen(): Promise<JobStore>;
  /** closes every handle and removes what the store left behind */
  dispose(): Promise<void>;
}

export async function testStore(uid: () => string = () => newUid("2.25")): Promise<TestStore> {
  const dir = tempDir("store-");
  const handles: JobStore[] = [];
  const open = async () => {
    const s = new SqliteJobStore(dir, uid);
    handles.push(s);
    return s;
  };
  const store = await open();
  return {
    store,
    reopen: open,
    async dispose() {
      for (const h of handles) await h.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
