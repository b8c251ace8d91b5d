/**
 * Each step of the nnU-Net runtime against the numbers nnU-Net itself produced for the fixtures
 * (../shared/data/nnunet-parity/<case>/intermediate: preprocessing.json, intermediate.npz) and against scipy for the
 * pieces nnU-Net delegates to it (gaussian_filter, binary_fill_holes).
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import ort from "onnxruntime-node";
import { importNnunet } from "../../src/cli/importNnunet.js";
import { exportNnunet } from "../../src/inference/nnunet/export.js";
import { onnxTileNetwork } from "../../src/inference/nnunet/predict.js";
import { cropToNonzero, preprocessNnunet } from "../../src/inference/nnunet/preprocess.js";
import type { Shape3 } from "../../src/inference/nnunet/resample.js";
import { nnunetGaussian, nnunetSlidingWindow, nnunetSteps } from "../../src/inference/nnunet/slidingWindow.js";
import { loadModelPackage } from "../../src/models/loadModel.js";
import { NnunetConfigSchema } from "../../src/models/nnunetConfig.js";
import { readNifti } from "../../src/volume/niftiRead.js";
import { readNpz } from "../helpers/npz.js";
import { exec, ROOT, sharedData, tempDir } from "../helpers/tools.js";

const fixtures = sharedData("nnunet-parity");

async function python(code: string): Promise<Buffer> {
  const script = `import numpy as np, scipy.ndimage as ndi, sys\n${code}\nsys.stdout.buffer.write(np.ascontiguousarray(out).tobytes())`;
  const { stdout } = await exec("/usr/bin/python3", ["-c", script], { encoding: "buffer", maxBuffer: 1 << 26 });
  return stdout as unknown as Buffer;
}

describe("nnU-Net steps against scipy", () => {
  for (const patch of [
    [16, 56, 64],
    [7, 72, 96],
    [20, 56, 64],
  ] as Shape3[])
    it(`Gaussian importance map ${patch} equals compute_gaussian's (gaussian_filter, /max*10, float16, zeros raised)`, async () => {
      const out = await python(`t = np.zeros(${JSON.stringify(patch)}); t[tuple(i // 2 for i in t.shape)] = 1
g = ndi.gaussian_filter(t, [i / 8 for i in t.shape], 0, mode='constant', cval=0)
g = (g / (g.max() / 10)).astype(np.float16)
g[g == 0] = g[g != 0].min()
out = g.astype(np.float32)`);
      const expected = new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.length));
      assert.deepEqual(nnunetGaussian(patch, false), expected);
    });

  it("2D Gaussian (patch [112, 144]) is the 2D map", async () => {
    const out = await python(`t = np.zeros((112, 144)); t[56, 72] = 1
g = ndi.gaussian_filter(t, [14, 18], 0, mode='constant', cval=0)
g = (g / (g.max() / 10)).astype(np.float16)
g[g == 0] = g[g != 0].min()
out = g.astype(np.float32)`);
    assert.deepEqual(
      nnunetGaussian([1, 112, 144], true),
      new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.length)),
    );
  });

  it("crop to non-zero fills enclosed holes (binary_fill_holes) and cuts the half-open bounding box", async () => {
    const shape: Shape3 = [9, 10, 11];
    const data = new Float32Array(9 * 10 * 11);
    // a hollow box with a zero cavity, and a zero notch open to the outside
    for (let i = 2; i < 7; i++)
      for (let j = 3; j < 9; j++)
        for (let k = 1; k < 8; k++) {
          const inside = i > 2 && i < 6 && j > 3 && j < 8 && k > 1 && k < 7;
          data[(i * 10 + j) * 11 + k] = inside ? 0 : 5;
        }
    data[(4 * 10 + 3) * 11 + 4] = 0; // opens the cavity's wall? no: the cavity starts at j = 4, this is the wall itself
    const out = await python(`d = np.zeros((9, 10, 11)); d[2:7, 3:9, 1:8] = 5; d[3:6, 4:8, 2:7] = 0; d[4, 3, 4] = 0
out = ndi.binary_fill_holes(d != 0).astype(np.uint8)`);
    const filled = new Uint8Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.length));
    const crop = cropToNonzero(data, shape);
    assert.deepEqual(crop.bbox, [
      [2, 7],
      [3, 9],
      [1, 8],
    ]);
    for (let i = 0; i < 5; i++)
      for (let j = 0; j < 6; j++)
        for (let k = 0; k < 7; k++)
          assert.equal(crop.mask[(i * 6 + j) * 7 + k], filled[((i + 2) * 10 + j + 3) * 11 + k + 1], `${i},${j},${k}`);
  });
});

describe("nnU-Net steps against nnU-Net's intermediate arrays", { skip: fixtures.skip }, () => {
  const work = tempDir("nnunet-steps-");
  after(() => rmSync(work, { recursive: true, force: true }));

  for (const name of ["ct-plain-3d", "ct-anisotropic", "ct-resenc-2folds", "mr-2d"]) {
    it(`${name}: transpose, crop box, shapes, resampled network input, window positions`, async () => {
      const dir = path.join(fixtures.path, name);
      const pj = JSON.parse(readFileSync(path.join(dir, "intermediate", "preprocessing.json"), "utf8"));
      const plans = JSON.parse(readFileSync(path.join(dir, "model", "plans.json"), "utf8"));
      const conf = plans.configurations[pj.configuration];
      const props = plans.foreground_intensity_properties_per_channel["0"];
      const config = {
        configuration: pj.configuration,
        transposeForward: plans.transpose_forward,
        transposeBackward: plans.transpose_backward,
        spacing: conf.spacing,
        patchSize: conf.patch_size,
        classes: 3,
        normalization: {
          scheme: conf.normalization_schemes[0],
          useMaskForNorm: conf.use_mask_for_norm[0],
          mean: props.mean,
          std: props.std,
          percentile_00_5: props.percentile_00_5,
          percentile_99_5: props.percentile_99_5,
        },
        resampling: {
          dataOrder: 3,
          dataOrderZ: 0,
          probabilitiesOrder: 1,
          probabilitiesOrderZ: 0,
          forceSeparateZ: null,
        },
        mirrorAxes: pj.mirror_axes,
        tileStepSize: 0.5,
        accumulate: "float16",
      };
      const img = readNifti(path.join(dir, "input", `${name}_0000.nii.gz`));
      const pre = preprocessNnunet(
        img.data,
        [img.dims[2], img.dims[1], img.dims[0]],
        [img.spacing[2], img.spacing[1], img.spacing[0]],
        NnunetConfigSchema.parse(config),
      );
      assert.deepEqual(pre.shapeBeforeCropping, pj.shape_before_cropping);
      assert.deepEqual(pre.bbox, pj.bbox_used_for_cropping);
      assert.deepEqual(pre.shapeAfterCropping, pj.shape_after_cropping_and_before_resampling);
      assert.deepEqual(pre.shape, pj.preprocessed_shape.slice(1));
      const padded = pj.padded_shape_for_sliding_window as number[];
      const patch = pj.patch_size as number[];
      const steps = padded.slice(padded.length - patch.length).map((n, a) => nnunetSteps(n, patch[a]!, 0.5));
      assert.deepEqual(steps, pj.sliding_window_steps_per_axis);
      const npz = path.join(dir, "intermediate", "intermediate.npz");
      if (name === "ct-plain-3d" || name === "ct-anisotropic") {
        const expected = readNpz(npz).get("preprocessed")!;
        let max = 0;
        for (let v = 0; v < pre.data.length; v++) max = Math.max(max, Math.abs(pre.data[v]! - expected.data[v]!));
        assert.ok(max <= 1e-6, `network input differs by up to ${max}`);
      }
    });
  }

  for (const name of ["ct-plain-3d", "ct-anisotropic"]) {
    it(`${name}: sliding window on nnU-Net's input gives its float16 logits; the way back from its logits gives its probabilities`, async (t) => {
      const dir = path.join(fixtures.path, name);
      await importNnunet({ folder: path.join(dir, "model"), id: name, outDir: work, root: ROOT });
      const pkg = loadModelPackage(work, name);
      const config = pkg.manifest.nnunet!;
      const inter = readNpz(path.join(dir, "intermediate", "intermediate.npz"));
      const input = inter.get("preprocessed")!;
      const nnLogits = inter.get("logits")!;
      const shape = input.shape.slice(1) as Shape3;
      const session = await ort.InferenceSession.create(pkg.onnxPaths[0]!, { intraOpNumThreads: 1 });
      const logits = await nnunetSlidingWindow(input.data as Float32Array, shape, {
        patch: config.patchSize as Shape3,
        is2d: false,
        stepSize: 0.5,
        mirrorAxes: config.mirrorAxes,
        classes: config.classes,
        float16: true,
        folds: [onnxTileNetwork(session, false)],
      });
      await session.release();
      let equal = 0,
        max = 0;
      for (let v = 0; v < logits.length; v++) {
        const d = Math.abs(logits[v]! - nnLogits.data[v]!);
        if (d === 0) equal++;
        max = Math.max(max, d);
      }
      t.diagnostic(`${name}: ${equal}/${logits.length} float16 logits bit-equal, max difference ${max}`);
      assert.ok(equal / logits.length >= 0.999, `${equal}/${logits.length} equal`);
      assert.ok(max <= 0.1, `logits differ by up to ${max}`);

      // the way back alone, from nnU-Net's own logits
      const pj = JSON.parse(readFileSync(path.join(dir, "intermediate", "preprocessing.json"), "utf8"));
      const img = readNifti(path.join(dir, "input", `${name}_0000.nii.gz`));
      const pre = preprocessNnunet(
        img.data,
        [img.dims[2], img.dims[1], img.dims[0]],
        [img.spacing[2], img.spacing[1], img.spacing[0]],
        config,
      );
      assert.deepEqual(pre.bbox, pj.bbox_used_for_cropping);
      const back = exportNnunet(nnLogits.data as Float32Array, pre, config, true);
      const ref = readNpz(path.join(dir, "expected", `${name}.npz`)).get("probabilities")!;
      const seg = readNifti(path.join(dir, "expected", `${name}.nii.gz`));
      let pmax = 0;
      for (let v = 0; v < ref.data.length; v++) pmax = Math.max(pmax, Math.abs(back.probabilities![v]! - ref.data[v]!));
      assert.ok(pmax <= 1e-6, `probabilities from nnU-Net's logits differ by ${pmax}`);
      assert.deepEqual(back.labels, Uint8Array.from(seg.data));
    });
  }
});
