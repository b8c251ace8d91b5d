import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { ROOT, tempDir } from "./tools.js";

/** What the Python peer recorded of one message it received (hl7.parse's reading of it). */
export interface PeerRecord {
  behaviour: string;
  controlId: string;
  type: string;
  version: string;
  pid: string[][];
  orc: string[][];
  obr: string[][];
  obx: string[][];
  pid5family: string;
  obxTexts: string[][];
}

export interface MllpPeer {
  port: number;
  /** the messages received so far, in order */
  received(): PeerRecord[];
  stop(): Promise<void>;
}

/**
 * Starts test/peers/mllp_peer.py: a RIS on python3-hl7's MLLP server (Debian python3-hl7, not Delineate's code),
 * answering each message with the next behaviour (AA, AE, AR, drop, silent), then AA.
 */
export async function startMllpPeer(
  behaviours: readonly string[] = [],
  tls?: { certFile: string; keyFile: string },
): Promise<MllpPeer> {
  const dir = tempDir("mllp-");
  const record = path.join(dir, "received.jsonl");
  const child: ChildProcess = spawn(
    "/usr/bin/python3",
    [path.join(ROOT, "test/peers/mllp_peer.py"), record, ...behaviours],
    {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, ...(tls ? { PEER_TLS_CERT: tls.certFile, PEER_TLS_KEY: tls.keyFile } : {}) },
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n")[0];
      if (out.includes("\n") && line) resolve(Number(line));
    });
    child.once("exit", (code) => reject(new Error(`the MLLP peer exited (${code}); is python3-hl7 installed?`)));
  });
  return {
    port,
    received: () =>
      existsSync(record)
        ? readFileSync(record, "utf8")
            .split("\n")
            .filter(Boolean)
            .map((l) => JSON.parse(l) as PeerRecord)
        : [],
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
