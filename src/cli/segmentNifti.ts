/**
 * `delineate segment FILE.nii[.gz]`: one NIfTI image through an imported nnU-Net model, the label map written as
 * NIfTI (uint8, the input's header and affine, as nnU-Net's writer keeps them) — for research use and parity tests,
 * without DICOM.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DelineateError } from "../errors.js";
import { onnxTileNetwork, predictNnunet } from "../inference/nnunet/predict.js";
import { createSession, type ExecutionProvider } from "../inference/session.js";
import type { Logger } from "../log.js";
import type { ModelPackage } from "../models/loadModel.js";
import { niftiLabelFile, readNifti } from "../volume/niftiRead.js";

export const isNiftiPath = (p: string): boolean => /\.nii(\.gz)?$/i.test(p);

export interface SegmentNiftiResult {
  file: string;
  seconds: number;
  provider: ExecutionProvider;
  voxels: number;
}

/** Segments `input` with `model` and writes OUT/<name>.nii.gz (the channel suffix _0000 dropped, as nnU-Net names it). */
export interface SegmentNiftiOptions {
  input: string;
  out: string;
  model: ModelPackage;
  inference: { executionProviders: readonly ExecutionProvider[]; intraOpThreads: number };
  log: Logger;
  /** also write nnU-Net's softmax probabilities, [C, k, j, i] float32, as OUT/<name>_probabilities.npy */
  probabilities?: boolean;
}

/** A .npy (format 1.0) of a float32 C-order array. */
export function npyFile(data: Float32Array, shape: readonly number[]): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  header += `${" ".repeat(63 - ((10 + header.length) % 64))}\n`; // the data starts 64-byte aligned
  const h = Buffer.alloc(10);
  h.write("\x93NUMPY", 0, "latin1");
  h[6] = 1;
  h[7] = 0;
  h.writeUInt16LE(header.length, 8);
  return Buffer.concat([h, Buffer.from(header, "latin1"), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

export async function segmentNifti(o: SegmentNiftiOptions): Promise<SegmentNiftiResult> {
  const { manifest } = o.model;
  const config = manifest.nnunet;
  if (manifest.preprocessing !== "nnunet" || !config)
    throw new DelineateError(
      "DLN_ERR_CONFIG_INVALID",
      `NIfTI input needs a model imported from nnU-Net (delineate import nnunet); ${manifest.id} is not one`,
    );
  const image = readNifti(o.input);
  const started = Date.now();
  const sessions = [];
  for (const p of o.model.onnxPaths)
    sessions.push(await createSession(p, { ...o.inference, dimensions: manifest.dimensions }, o.log));
  try {
    const is2d = config.patchSize.length === 2;
    const [ni, nj, nk] = image.dims;
    const [si, sj, sk] = image.spacing;
    // nnU-Net reads NIfTI with its voxel axes reversed (NibabelIO): the file's i-fastest buffer is that C-order array
    const result = await predictNnunet(
      image.data,
      [nk, nj, ni],
      [sk, sj, si],
      config,
      sessions.map((s) => onnxTileNetwork(s.session, is2d, manifest.input.name, manifest.output.name)),
      o.probabilities,
    );
    const name = path
      .basename(o.input)
      .replace(/\.nii(\.gz)?$/i, "")
      .replace(/_0000$/, "");
    const file = path.join(o.out, `${name}.nii.gz`);
    writeFileSync(file, niftiLabelFile(image, result.labels, true));
    if (o.probabilities && result.probabilities)
      writeFileSync(
        path.join(o.out, `${name}_probabilities.npy`),
        npyFile(result.probabilities, [config.classes, nk, nj, ni]),
      );
    return {
      file,
      seconds: (Date.now() - started) / 1000,
      provider: sessions[0]!.provider,
      voxels: image.data.length,
    };
  } finally {
    for (const s of sessions) await s.session.release();
  }
}

/** The CLI's `segment FILE.nii[.gz] --out DIR [--model ID]`. */
export async function segmentNiftiCommand(
  file: string,
  out: string,
  modelId: string | undefined,
  probabilities: boolean,
  config: { model: { dir: string; id: string }; inference: SegmentNiftiOptions["inference"] },
): Promise<number> {
  const [{ createLogger }, { loadModelPackage }] = await Promise.all([
    import("../log.js"),
    import("../models/loadModel.js"),
  ]);
  mkdirSync(out, { recursive: true });
  const r = await segmentNifti({
    input: file,
    out,
    model: loadModelPackage(config.model.dir, modelId ?? config.model.id),
    inference: config.inference,
    log: createLogger({ level: "warn" }),
    probabilities,
  });
  process.stdout.write(`${r.file}\n`);
  return 0;
}
