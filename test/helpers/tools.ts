import { execFile } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const exec = promisify(execFile);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
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

/** Runs Python code with Debian's interpreter (pydicom lives there), returning stdout parsed as JSON. */
export async function python(code: string, args: string[] = []): Promise<any> {
  const { stdout } = await exec("/usr/bin/python3", ["-c", code, ...args], { maxBuffer: 256 * 1024 * 1024 });
  return JSON.parse(stdout);
}

/**
 * PixelMed's DicomSRValidator (Debian pixelmed-apps): checks an SR against its IOD and templates (TID 1500 here).
 * Run through java directly: Java 17's XPath operator limits stop its compiled XSLT unless lifted. Throws unless
 * both validations report completion, so a validator that did not run never reads as a pass.
 */
export async function pixelmedSRValidator(file: string): Promise<{ errors: string[]; warnings: string[] }> {
  const limits = ["jdk.xml.xpathExprGrpLimit", "jdk.xml.xpathExprOpLimit", "jdk.xml.xpathTotalOpLimit"].map(
    (p) => `-D${p}=0`,
  );
  const r = await exec("java", [
    ...limits,
    "-cp",
    "/usr/share/java/pixelmed.jar",
    "com.pixelmed.validate.DicomSRValidator",
    file,
  ]).catch((e: { stdout: string; stderr: string }) => e);
  const output = `${r.stdout}\n${r.stderr}`;
  if (!/Root Template Validation Complete/.test(output) || !/IOD validation complete/.test(output))
    throw new Error(`DicomSRValidator did not complete:\n${output}`);
  const lines = output.split("\n").map((l) => l.trim());
  return { errors: lines.filter((l) => /^Error/i.test(l)), warnings: lines.filter((l) => /^Warning/i.test(l)) };
}
