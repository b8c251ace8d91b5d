import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, openSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { pacsFetch } from "../src/pacs/http.js";
import { tempDir } from "./tempDir.js";

export interface TestOrthanc {
  url: string;
  dicomPort: number;
  aet: string;
  username: string;
  password: string;
  dir: string;
  /** GET on Orthanc's REST API with auth, parsed as JSON */
  rest(p: string): Promise<any>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 250,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface OrthancOptions {
  /** storage folder (default: a new temp folder, removed when this process exits unless `detached`) */
  dir?: string;
  httpPort?: number;
  dicomPort?: number;
  username?: string;
  password?: string;
  /** keep Orthanc running after this process exits (the demo) */
  detached?: boolean;
  /** Lua scripts to load (absolute paths) and environment for Orthanc's process (what they read) */
  luaScripts?: string[];
  env?: Record<string, string>;
  /** more of Orthanc's configuration (e.g. UserMetadata, which Delineate's Orthanc notifier writes on 1.10) */
  extraConfig?: Record<string, unknown>;
}

/** A throw-away Orthanc with DICOMweb and auth on, on free loopback ports, storing into a temp folder. */
export async function startOrthanc(options: OrthancOptions = {}): Promise<TestOrthanc> {
  // a detached Orthanc outlives this process, so its folder must too: only then is it not a tempDir
  const dir =
    options.dir ?? (options.detached ? mkdtempSync(path.join(tmpdir(), "delineate-orthanc-")) : tempDir("orthanc-"));
  mkdirSync(dir, { recursive: true });
  const httpPort = options.httpPort ?? (await freePort());
  const dicomPort = options.dicomPort ?? (await freePort());
  const username = options.username ?? "delineate",
    password = options.password ?? "test-password-1";
  const config = {
    Name: "TESTPACS",
    StorageDirectory: path.join(dir, "db"),
    IndexDirectory: path.join(dir, "db"),
    HttpPort: httpPort,
    DicomPort: dicomPort,
    DicomAet: "TESTPACS",
    RemoteAccessAllowed: false,
    AuthenticationEnabled: true,
    RegisteredUsers: { [username]: password },
    Plugins: ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so", "/usr/share/orthanc/plugins/libOrthancGdcm.so"],
    StableAge: 2,
    DicomWeb: { Enable: true, Root: "/dicom-web/" },
    ...(options.luaScripts ? { LuaScripts: options.luaScripts } : {}),
    ...options.extraConfig,
  };
  const configFile = path.join(dir, "orthanc.json");
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const url = `http://127.0.0.1:${httpPort}`;
  const get = pacsFetch({ url, dicomWebRoot: "/dicom-web", username, password, timeoutMs: 30_000 });
  const rest = async (p: string): Promise<any> => {
    const res = await get(url + p, {});
    if (!res.ok) throw new Error(`Orthanc ${res.status} on ${p}`);
    return res.json();
  };
  let proc: ChildProcess | undefined;
  const start = async () => {
    const log = createWriteStream(path.join(dir, "orthanc.log"), { flags: "a" });
    if (options.detached) {
      const fd = openSync(path.join(dir, "orthanc.log"), "a");
      proc = spawn("Orthanc", [configFile], {
        stdio: ["ignore", fd, fd],
        detached: true,
        env: { ...process.env, ...options.env },
      });
      proc.unref();
      writeFileSync(path.join(dir, "orthanc.pid"), String(proc.pid));
    } else {
      proc = spawn("Orthanc", [configFile], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, ...options.env },
      });
      proc.stdout?.pipe(log);
      proc.stderr?.pipe(log);
    }
    await waitFor(
      "Orthanc to answer /system",
      async () => (await rest("/system")).Version as string | undefined,
      30_000,
    );
  };
  const stop = async () => {
    const p = proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once("exit", () => resolve());
      p.kill("SIGTERM");
    });
  };
  await start();
  return { url, dicomPort, aet: "TESTPACS", username, password, dir, rest, stop, start };
}
