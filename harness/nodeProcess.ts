import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, writeFileSync } from "node:fs";
import path from "node:path";
import { Agent } from "undici";
import { FINAL_STATES, type Job, type JobKind } from "../src/jobs/job.js";
import type { TestOrthanc } from "./orthanc.js";
import { freePort, waitFor } from "./orthanc.js";
import { TEST_STORE, testStoreUrl } from "./store.js";
import { ROOT } from "./tools.js";

export interface NodeProcess {
  port: number;
  token: string;
  logFile: string;
  /** the running process's id (for /proc readings) */
  pid(): number | undefined;
  /** sends a signal without waiting (SIGSTOP / SIGCONT to freeze and thaw it) */
  signal(signal: NodeJS.Signals): void;
  api(p: string, token?: string | null): Promise<Response>;
  /** the study's jobs, newest first */
  jobs(study: string, kind?: JobKind): Promise<Job[]>;
  /**
   * Once every job of the study has ended (FINAL_STATES): its segment jobs, or its route job when routing did not end
   * done (skipped, failed, dead, cancelled); undefined while anything is queued or running.
   */
  settled(study: string): Promise<Job[] | undefined>;
  /** SIGTERM (graceful) or SIGKILL (a crash), then wait for the exit */
  stop(signal?: NodeJS.Signals): Promise<void>;
  start(): Promise<void>;
}

/** Runs `delineate serve` as a real child process against a test Orthanc; data dir and log survive restarts. */
export async function startNodeProcess(
  orthanc: TestOrthanc,
  dataDir: string,
  options: {
    logFile: string;
    jobs?: { maxAttempts: number; retryBaseSeconds: number };
    ingest?: {
      changeFeed: boolean;
      webhook: boolean;
      qido?: { enabled: boolean; lookbackDays: number; quietSeconds: number };
      stow?: { enabled: boolean; quietSeconds: number; maxBodyMiB: number };
    };
    port?: number;
    token?: string;
    /** the job store's URL; default: a new one of the DELINEATE_TEST_STORE kind (SQLite in the data folder) */
    storeUrl?: string;
    /** the node's roles (DELINEATE_ROLES); default all */
    roles?: string;
    /** changes to the generated configuration (routes, destinations, another model folder) */
    configure?: (config: Record<string, any>) => void;
  },
): Promise<NodeProcess> {
  const port = options.port ?? (await freePort());
  const token = options.token ?? `test-token-${Math.random().toString(36).slice(2)}`;
  const configFile = path.join(dataDir, "..", `config-${port}.json`);
  const storeUrl = options.storeUrl ?? (TEST_STORE === "postgres" ? (await testStoreUrl()).url : undefined);
  const config: Record<string, any> = {
    pacs: { url: orthanc.url, dicomWebRoot: "/dicom-web", timeoutMs: 30_000 },
    dataDir,
    http: { host: "127.0.0.1", port },
    ingest: {
      changeFeed: options.ingest?.changeFeed ?? true,
      pollIntervalSeconds: 0.5,
      webhook: options.ingest?.webhook ?? false,
      ...(options.ingest?.qido ? { qido: options.ingest.qido } : {}),
      ...(options.ingest?.stow ? { stow: options.ingest.stow } : {}),
    },
    model: { dir: path.join(ROOT, "models"), id: "ct-body" },
    inference: { executionProviders: ["cpu"] },
    outputs: { seriesNumber: 9001, seriesDescription: "Delineate test", deviceSerialNumber: "test-node" },
    // a short lease, so a job whose worker was killed is taken over within the tests' patience
    jobs: { leaseSeconds: 10, ...(options.jobs ?? { maxAttempts: 3, retryBaseSeconds: 1 }) },
    ...(storeUrl ? { store: { url: storeUrl } } : {}),
    log: { level: "debug" },
  };
  options.configure?.(config);
  writeFileSync(configFile, JSON.stringify(config));
  let proc: ChildProcess | undefined;
  const oneShot = new Agent({ pipelining: 0 });
  const env = {
    ...process.env,
    DELINEATE_PACS_USERNAME: orthanc.username,
    DELINEATE_PACS_PASSWORD: orthanc.password,
    DELINEATE_API_TOKEN: token,
    ...(options.roles ? { DELINEATE_ROLES: options.roles } : {}),
  };
  // A new connection per call: a kept-alive socket that the node closes as its idle timer fires (late, when a busy
  // stage held its event loop) would fail a test's call with "fetch failed" though the node is well.
  const api = (p: string, t: string | null = token) =>
    fetch(`http://127.0.0.1:${port}${p}`, {
      headers: t ? { Authorization: `Bearer ${t}` } : {},
      dispatcher: oneShot,
    } as RequestInit);
  const start = async () => {
    const log = createWriteStream(options.logFile, { flags: "a" });
    proc = spawn(process.execPath, [path.join(ROOT, "dist/src/cli/main.js"), "serve", "--config", configFile], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    proc.stdout?.pipe(log);
    proc.stderr?.pipe(log);
    const p = proc;
    await waitFor(
      "the node to answer /healthz",
      async () => {
        if (p.exitCode !== null) throw new Error(`node exited with ${p.exitCode}; see ${options.logFile}`);
        return (await api("/healthz")).ok || undefined;
      },
      60_000,
    );
  };
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once("exit", () => resolve());
      p.kill(signal);
    });
  };
  const jobs = async (study: string, kind?: JobKind) =>
    (await (await api(`/api/jobs?study=${study}${kind ? `&kind=${kind}` : ""}`)).json()) as Job[];
  const settled = async (study: string) => {
    const all = await jobs(study);
    const route = all.find((j) => j.kind === "route");
    if (!route || !all.every((j) => FINAL_STATES.includes(j.state))) return undefined;
    return route.state === "done" ? all.filter((j) => j.kind === "segment") : [route];
  };
  await start();
  return {
    port,
    token,
    logFile: options.logFile,
    pid: () => proc?.pid,
    signal: (sig) => void proc?.kill(sig),
    api,
    jobs,
    settled,
    stop,
    start,
  };
}
