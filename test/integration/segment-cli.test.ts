import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { truncatedPhantomStudy } from "../helpers/data.js";
import { dciodvfy, pixelmedSRValidator, python, ROOT, tempDir } from "../helpers/tools.js";

const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [path.join(ROOT, "dist/src/cli/main.js"), ...args]).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe("delineate segment: a folder in, DICOM outputs out", () => {
  it("segments every series the model takes, reports the rest by name, and writes valid SEG, SR and RTSTRUCT", {
    timeout: 180_000,
  }, async () => {
    const work = tempDir("segment-");
    const input = path.join(work, "in");
    const a = writePhantomSeries(path.join(input, "a"), {
      size: 64,
      slices: 12,
      pixelSpacing: 6,
      sliceSpacing: 4,
      patientName: "Cli^Carla",
      patientID: "CLI-1",
    });
    const b = writePhantomSeries(path.join(input, "nested", "b"), {
      size: 48,
      slices: 9,
      pixelSpacing: 8,
      sliceSpacing: 5,
      patientName: "Cli^Carl",
      patientID: "CLI-2",
    });
    const bad = truncatedPhantomStudy(path.join(input, "truncated"), "Cli^Trunc", "CLI-3");
    writeFileSync(path.join(input, "notes.txt"), "not DICOM");

    const r = await run(["segment", input, "--out", path.join(work, "out")]);
    assert.equal(r.code, 1, "a series failed, so the exit status says so");
    assert.match(r.stderr, /skipped .*notes\.txt/);
    assert.match(
      r.stderr,
      new RegExp(
        `series ${bad.seriesInstanceUID.replace(/\./g, "\\.")} failed: DLN_ERR_VOLUME_UNSUPPORTED: .*truncated`,
      ),
    );
    const files = r.stdout.trim().split("\n").sort();
    const expected = [a, b]
      .flatMap((s) =>
        ["rtstruct", "seg", "sr"].map((k) =>
          path.join(work, "out", s.studyInstanceUID, s.seriesInstanceUID, `${k}.dcm`),
        ),
      )
      .sort();
    assert.deepEqual(files, expected, "both good series, each with SEG, SR and RTSTRUCT (the model's outputs)");
    for (const f of files) {
      const v = await dciodvfy(f);
      assert.deepEqual(v.errors, [], `${f}: ${v.errors.join("\n")}`);
      if (f.endsWith("sr.dcm")) assert.deepEqual((await pixelmedSRValidator(f)).errors, [], f);
    }
    const modalities = await python(
      `import json, sys, pydicom\nprint(json.dumps([pydicom.dcmread(f).Modality for f in sys.argv[1:]]))`,
      files.slice(0, 3),
    );
    assert.deepEqual(modalities, ["RTSTRUCT", "SEG", "SR"]);
  });

  it("writes only the formats asked for (the overlay too), and refuses an SR without its SEG", {
    timeout: 120_000,
  }, async () => {
    const work = tempDir("segment-");
    const s = writePhantomSeries(path.join(work, "in"), {
      size: 48,
      slices: 9,
      pixelSpacing: 8,
      sliceSpacing: 5,
      patientName: "Cli^Solo",
      patientID: "CLI-4",
    });
    const only = await run([
      "segment",
      path.join(work, "in"),
      "--out",
      path.join(work, "out"),
      "--format",
      "rtstruct,sc",
    ]);
    assert.equal(only.code, 0, only.stderr);
    const written = only.stdout.trim().split("\n");
    assert.deepEqual(
      written,
      ["rtstruct", "sc"].map((k) => path.join(work, "out", s.studyInstanceUID, s.seriesInstanceUID, `${k}.dcm`)),
    );
    for (const f of written) assert.deepEqual((await dciodvfy(f)).errors, [], f);
    const refused = await run(["segment", path.join(work, "in"), "--out", path.join(work, "out2"), "--format", "sr"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /--format sr needs seg too/);
  });
});
