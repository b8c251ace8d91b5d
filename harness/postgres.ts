import { type ChildProcess, spawn } from "node:child_process";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort, waitFor } from "./orthanc.js";
import { exec } from "./tools.js";

const BIN = process.env.DELINEATE_PG_BIN ?? "/usr/lib/postgresql/15/bin";

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([
    exec("id", ["-u", "postgres"]),
    exec("id", ["-g", "postgres"]),
  ]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

/** A throw-away PostgreSQL server: its own folder, a free port, trust authentication on 127.0.0.1. */
export interface TestPostgres {
  port: number;
  /** a new, empty database on it; its URL */
  createDatabase(): Promise<string>;
  /** stops the server (fast shutdown) and removes its folder */
  stop(): Promise<void>;
  /** SIGKILL-free restart: stops and starts the server on the same port and data (a PostgreSQL restart) */
  restart(): Promise<void>;
}

/**
 * Starts one with initdb in a temporary folder. PostgreSQL refuses to run as root, so as root the folder is given
 * to the `postgres` user and the binaries run as it (Debian's package makes that user).
 */
export async function startPostgres(options: { durable?: boolean } = {}): Promise<TestPostgres> {
  // tests trade durability for speed (fsync off); a benchmark keeps PostgreSQL's defaults
  const fast = options.durable ? [] : ["-c", "fsync=off"];
  const dir = mkdtempSync(path.join(tmpdir(), "delineate-pg-"));
  const data = path.join(dir, "data");
  // as root, the folder and the processes belong to `postgres` (spawned with its uid: no wrapper to pass signals)
  const owner = process.getuid?.() === 0 ? await postgresUser() : undefined;
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const cmd = (bin: string, args: string[]): [string, string[], { uid?: number; gid?: number }] => [
    path.join(BIN, bin),
    args,
    owner ?? {},
  ];
  await exec(...cmd("initdb", ["-D", data, "-A", "trust", "-U", "delineate", "--no-sync", "-E", "UTF8"]));
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const start = async () => {
    const [c, a, ids] = cmd("postgres", [
      "-D",
      data,
      "-p",
      String(port),
      "-k",
      dir,
      "-c",
      "listen_addresses=127.0.0.1",
      ...fast,
      "-c",
      "max_connections=200",
    ]);
    proc = spawn(c, a, { stdio: "ignore", ...ids });
    await waitFor(
      "PostgreSQL to accept connections",
      async () => {
        const client = new pg.Client({ host: "127.0.0.1", port, user: "delineate", database: "postgres" });
        try {
          await client.connect();
          await client.end();
          return true;
        } catch {
          await client.end().catch(() => {});
          return undefined;
        }
      },
      30_000,
      100,
    );
  };
  const halt = async () => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once("exit", () => resolve());
      p.kill("SIGINT"); // fast shutdown: disconnects clients, checkpoints, exits
    });
  };
  await start();
  let n = 0;
  return {
    port,
    async createDatabase() {
      const name = `t${process.pid}_${++n}`;
      const admin = new pg.Client({ host: "127.0.0.1", port, user: "delineate", database: "postgres" });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return `postgres://delineate:unused@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await halt();
      await start();
    },
  };
}
