// the tools the bench and the demo use too live in harness/; the validators only tests run stay here
import { exec } from "../../harness/tools.js";

export { tempDir } from "../../harness/tempDir.js";
export { dciodvfy, exec, ROOT, SHARED_DATA, sharedData, storescu } from "../../harness/tools.js";

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
