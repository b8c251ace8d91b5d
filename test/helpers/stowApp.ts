import { type DuplicatePolicy, PushedStudies } from "../../src/ingest/pushedStudies.js";
import { createLogger } from "../../src/log.js";
import { createApp } from "../../src/server/app.js";
import { stowRouter } from "../../src/server/stow.js";
import { testStore } from "./store.js";
import { tempDir } from "./tools.js";

/** An app with STOW-RS on a fresh pushed store; `received` collects the studies it was told of (noted in `store` with noteInStore). */
export async function stowApp(
  options: { duplicates?: DuplicatePolicy; maxStoredBytes?: number; noteInStore?: boolean } = {},
) {
  const t = await testStore();
  const received: string[] = [];
  const log = createLogger({ level: "error", silent: true });
  const pushed = new PushedStudies(tempDir("stow-unit-"), options.duplicates, options.maxStoredBytes);
  const app = createApp({
    store: t.store,
    apiToken: "t0ken",
    log,
    health: () => ({}),
    dicomWeb: stowRouter({
      pushed,
      received: async (s, replaced) => {
        received.push(s);
        // noted in the store as the node does, when a test routes what was pushed
        if (options.noteInStore) await t.store.notePushed(s, Date.now(), replaced);
      },
      maxBodyBytes: 2 ** 30,
      log,
    }),
  });
  return { app, received, pushed, store: t.store, dispose: () => t.dispose() };
}
