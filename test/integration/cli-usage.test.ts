import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { ROOT } from "../helpers/tools.js";

const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [path.join(ROOT, "dist/src/cli/main.js"), ...args]).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe("delineate usage", () => {
  for (const args of [["--help"], ["-h"], ["help"], ["segment", "--help"], ["convert", "-h"]]) {
    it(`\`delineate ${args.join(" ")}\` prints the usage on stdout and exits 0`, async () => {
      const r = await run(args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^usage: delineate <command> \[options\]/);
      assert.match(r.stdout, /segment FOLDER --out DIR/);
      assert.equal(r.stderr, "");
    });
  }
  it("without a command, or with an unknown one, prints the usage and exits 2", async () => {
    const none = await run([]);
    assert.equal(none.code, 2);
    assert.match(none.stdout, /^usage: delineate/);
    const unknown = await run(["--frobnicate"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "--frobnicate"\nusage: delineate/);
  });
});
