/**
 * An imported nnU-Net model through the DICOM path: ct-plain-3d's input written as a CT series
 * (training/nifti_to_dicom.py, voxel order kept), `delineate segment FOLDER` writes a SEG that passes dciodvfy and
 * holds nnU-Net's own labels voxel for voxel.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, it } from "node:test";
import { dciodvfy, exec, python, ROOT, sharedData, tempDir } from "../helpers/tools.js";

const fixture = sharedData("nnunet-parity/ct-plain-3d");

it("nnU-Net import on a DICOM series: SEG valid and equal to nnU-Net's labels", { skip: fixture.skip }, async () => {
  const work = tempDir("nnunet-dicom-");
  after(() => rmSync(work, { recursive: true, force: true }));
  const cli = (args: string[]) => exec(process.execPath, [path.join(ROOT, "dist/src/cli/main.js"), ...args]);
  const input = path.join(work, "in");
  await exec("/usr/bin/python3", [
    path.join(ROOT, "training", "nifti_to_dicom.py"),
    path.join(fixture.path, "input", "ct-plain-3d_0000.nii.gz"),
    input,
  ]);
  assert.deepEqual((await dciodvfy(path.join(input, "0000.dcm"))).errors, [], "the CT slices");
  await cli([
    "import",
    "nnunet",
    path.join(fixture.path, "model"),
    "--id",
    "ct-plain-3d",
    "--out",
    path.join(work, "models"),
  ]);
  const config = path.join(work, "config.json");
  const base = JSON.parse(readFileSync(path.join(ROOT, "config", "default.json"), "utf8"));
  writeFileSync(config, JSON.stringify({ ...base, model: { dir: path.join(work, "models"), id: "ct-plain-3d" } }));
  const r = await cli(["segment", input, "--out", path.join(work, "out"), "--format", "seg", "--config", config]);
  const seg = r.stdout.trim().split("\n")[0]!;
  assert.match(seg, /seg\.dcm$/);
  assert.deepEqual((await dciodvfy(seg)).errors, [], "SEG");
  const check = (await python(
    `import sys, gzip, glob, json, numpy as np, pydicom
seg = pydicom.dcmread(sys.argv[1])
frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
slices = [pydicom.dcmread(f) for f in glob.glob(sys.argv[2] + '/*.dcm')]
k_of = {s.SOPInstanceUID: int(s.InstanceNumber) - 1 for s in slices}
raw = gzip.open(sys.argv[3]).read()
off = int(np.frombuffer(raw[108:112], '<f4')[0])
dims = [int(d) for d in np.frombuffer(raw[42:48], '<i2')]
expected = np.frombuffer(raw[off:], np.uint8).reshape(dims[2], dims[1], dims[0])
got = np.zeros_like(expected)
for i, fg in enumerate(seg.PerFrameFunctionalGroupsSequence):
    k = k_of[fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
    got[k][frames[i].astype(bool)] = int(fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
print(json.dumps({"differing": int((got != expected).sum()), "voxels": int(got.size), "labels": [s.SegmentLabel for s in seg.SegmentSequence]}))`,
    [seg, input, path.join(fixture.path, "expected", "ct-plain-3d.nii.gz")],
  )) as { differing: number; voxels: number; labels: string[] };
  assert.deepEqual(check.labels, ["soft_tissue", "bone"]);
  assert.equal(check.differing, 0, `${check.differing} of ${check.voxels} voxels differ from nnU-Net's segmentation`);
});
