/** What every benchmark writes beside its figures: the machine it ran on, merged into bench/results.json. */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT } from "../harness/tools.js";

/** The machine and software a benchmark ran on; `software` adds versions (Orthanc, dcmjs, onnxruntime…). */
export function machineFacts<T extends Record<string, string>>(software: T = {} as T) {
  return {
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    ...software,
    date: new Date().toISOString(),
  };
}

/** The version of an npm package as installed in node_modules (what a benchmark ran, not what package.json asks for). */
export function installedVersion(name: string): string {
  return (
    JSON.parse(readFileSync(path.join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }
  ).version;
}

/** Sets the given top-level entries of bench/results.json, keeping the other benchmarks' entries. */
export function mergeResults(entries: Record<string, unknown>): void {
  const file = path.join(ROOT, "bench", "results.json");
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
  writeFileSync(file, `${JSON.stringify({ ...previous, ...entries }, null, 2)}\n`);
}

/** Runs a benchmark's main, printing why it failed and exiting 1 if it did. */
export function runBench(main: () => Promise<void>): void {
  main().catch((err: Error) => {
    process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * The functions that took the most self time in the `node --cpu-prof` profile written to `dir`, as seconds and
 * shares of the sampled time: where a benchmark's time goes. Native work (onnxruntime's run) shows as the JS
 * function that called it.
 */
export function cpuProfileSplit(dir: string, top = 8): { function: string; seconds: number; share: number }[] {
  const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) return [];
  const profile = JSON.parse(readFileSync(path.join(dir, file), "utf8")) as CpuProfile;
  const name = new Map(
    profile.nodes.map((n) => {
      const { functionName, url, lineNumber } = n.callFrame;
      const where = url ? `${path.basename(url)}:${lineNumber + 1}` : "native";
      return [n.id, `${functionName || "(anonymous)"} (${where})`];
    }),
  );
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const key = name.get(id) ?? "?";
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, us]) => ({ function: fn, seconds: us / 1e6, share: us / total }));
}
