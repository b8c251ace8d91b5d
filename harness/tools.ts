import { execFile } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

// harness/: what the tests, the benchmarks and the demo share to run Delineate against real tools, a real Orthanc
// and real data; not part of the shipped package (src/ never imports it)

export const exec = promisify(execFile);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const SHARED_DATA = path.resolve(ROOT, "../shared/data");

/** The real third-party data, or a reason to skip that says what is missing. */
export function sharedData(rel: string): { path: string; skip?: string } {
  const p = path.join(SHARED_DATA, rel);
  return existsSync(p)
    ? { path: p }
    : { path: p, skip: `${p} is absent (../shared/data not checked out beside the project)` };
}

/**
 * Sends the files of a folder (or one file) over DICOM C-STORE as a modality would (dcmtk's storescu). storescu exits 0 even
 * when stores fail, so its error lines are checked. `extra`: e.g. ["-xv"] to propose JPEG 2000 lossless.
 */
export async function storescu(port: number, aet: string, target: string, extra: string[] = []): Promise<void> {
  // Directory files (DICOMDIR, Philips DIRFILE) are not instances a modality sends.
  const files = statSync(target).isDirectory()
    ? (readdirSync(target, { recursive: true }) as string[])
        .map((f) => path.join(target, f))
        .filter((f) => statSync(f).isFile() && !/^(DIRFILE|DICOMDIR)/.test(path.basename(f)))
    : [target];
  const r = await exec("storescu", [
    "-aet",
    "MODALITY",
    "-aec",
    aet,
    ...extra,
    "-nh",
    "127.0.0.1",
    String(port),
    ...files,
  ]);
  const errors = `${r.stdout}\n${r.stderr}`.split("\n").filter((l) => l.startsWith("E:"));
  if (errors.length) throw new Error(`storescu failed for ${target}:\n${errors.slice(0, 5).join("\n")}`);
}

/** dciodvfy's verdict: its exit code and every "Error -" line (the test shows them when there are any). */
export async function dciodvfy(file: string): Promise<{ errors: string[]; warnings: string[] }> {
  const r = await exec("dciodvfy", [file]).catch((e: { stdout: string; stderr: string }) => e);
  const lines = `${r.stdout}\n${r.stderr}`.split("\n");
  return { errors: lines.filter((l) => l.startsWith("Error")), warnings: lines.filter((l) => l.startsWith("Warning")) };
}
