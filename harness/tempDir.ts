import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

let root: string | undefined;

/** The one folder under the system's temp folder that holds every folder tempDir makes in this process. */
function processRoot(): string {
  if (root) return root;
  const made = mkdtempSync(path.join(tmpdir(), "delineate-tmp-"));
  // node --test runs each test file in its own process, so this removes a suite's folders when the suite ends
  process.once("exit", () => {
    try {
      rmSync(made, { recursive: true, force: true });
    } catch (err) {
      process.stderr.write(`could not remove the temporary folder ${made}: ${(err as Error).message}\n`);
    }
  });
  root = made;
  return made;
}

/**
 * A new, empty scratch folder, named `<prefix>XXXXXX`, removed with everything in it when this process exits. Tests,
 * benchmarks and scripts make their temporary folders with this, never with mkdtemp (test/unit/codebase.test.ts).
 */
export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(processRoot(), prefix));
}
