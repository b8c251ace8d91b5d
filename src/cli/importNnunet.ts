/**
 * `delineate import nnunet`: a trained nnU-Net v2 model folder in, a model package out. The network export runs in
 * Python (training/nnunet_export.py, Debian's python3-torch); everything the runtime needs goes into model.json's
 * `nnunet` block, so inference itself stays in TypeScript.
 */

import { execFile } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { DelineateError } from "../errors.js";
import { ManifestSchema, type ModelManifest } from "../models/manifest.js";
import { type NnunetConfig, NnunetConfigSchema } from "../models/nnunetConfig.js";

const exec = promisify(execFile);

/** The private coding scheme imported labels carry until a site gives them SNOMED CT codes (PS3.16: "99" prefix). */
export const UNCODED_SCHEME = "99DLN";

/** What training/nnunet_export.py prints. */
interface ExportInfo {
  network: string;
  dimensions: 2 | 3;
  patchSize: number[];
  spacing: number[];
  transposeForward: [number, number, number];
  transposeBackward: [number, number, number];
  normalization: string;
  useMaskForNorm: boolean;
  intensityProperties?: { mean: number; std: number; percentile_00_5: number; percentile_99_5: number };
  resamplingFunctions?: (string | null | undefined)[];
  resamplingData?: { order: number; order_z: number; force_separate_z: boolean | null };
  resamplingProbabilities?: { order: number; order_z: number; force_separate_z: boolean | null };
  mirrorAxes: number[];
  labels: Record<string, number>;
  channels: Record<string, string>;
  files: string[];
  trainer: string;
  plansName?: string;
  datasetName?: string;
}

export interface ImportOptions {
  folder: string;
  id: string;
  outDir: string;
  configuration?: string;
  folds?: string[];
  checkpoint?: string;
  python?: string;
  /** the repository root, where training/nnunet_export.py is */
  root: string;
}

/** Distinct, readable colours for label values (a site may change them), written as RGB hex triplets. */
const PALETTE = "e6194b 3cb44b ffe119 0082c8 f58230 911eb4 46f0f0 f032e6 d2f53c fabed4 008080 dcbeff"
  .split(" ")
  .map((hex): [number, number, number] => [
    Number.parseInt(hex.slice(0, 2), 16),
    Number.parseInt(hex.slice(2, 4), 16),
    Number.parseInt(hex.slice(4, 6), 16),
  ]);

/** model.json for an exported nnU-Net model: labels from dataset.json, the runtime settings from plans.json. */
export function nnunetManifest(
  info: ExportInfo,
  o: { id: string; configuration: string; folder: string },
): {
  manifest: ModelManifest;
  warnings: string[];
} {
  const entries = importableLabels(info);
  const props = info.intensityProperties;
  const isCt = info.normalization === "CTNormalization";
  const nnunet = nnunetBlock(info, o.configuration, entries.length);
  // the manifest's own (Delineate-path) fields, filled with their nearest meaning; the nnunet block is what runs
  const sp = info.spacing;
  const xyz = (sp.length === 2 ? [sp[1], sp[0], sp[0]] : [sp[2], sp[1], sp[0]]) as [number, number, number];
  const channel = Object.values(info.channels)[0] ?? "";
  const modality = isCt || /\bct\b/i.test(channel) ? "CT" : "MR";
  const labels = entries.slice(1).map(([name, value]) => ({
    value,
    name: name.slice(0, 64),
    color: PALETTE[(value - 1) % PALETTE.length]!,
    category: { code: "91723000", scheme: "SCT", meaning: "Anatomical structure" },
    type: { code: `nnunet-${value}`, scheme: UNCODED_SCHEME, meaning: name.slice(0, 64) },
    rtInterpretedType: "ORGAN" as const,
  }));
  const warnings = [
    `labels carry placeholder codes (${UNCODED_SCHEME} "nnunet-<value>"): give each its SNOMED CT category and type in ${o.id}/model.json before clinical use (docs/nnunet.md)`,
  ];
  if (info.dimensions === 3 && info.network)
    warnings.push(
      "the network keeps nnU-Net's transposed convolutions (the trained weights need them), so onnxruntime-node's WebGPU provider cannot run it: CPU or CUDA",
    );
  const manifest = ManifestSchema.parse({
    id: o.id,
    version: "1.0.0",
    name: (info.datasetName ?? o.id).slice(0, 64),
    description: `nnU-Net v2 ${info.network} (${info.plansName ?? "plans"}, ${o.configuration}, ${info.files.length} fold${info.files.length > 1 ? "s" : ""}) imported from ${path.resolve(o.folder)}`,
    modality,
    dimensions: info.dimensions,
    files: info.files,
    input: {
      name: "image",
      layout: info.dimensions === 3 ? "NCZYX" : "NCYX",
      spacing: xyz,
      sizeMultiple: 1,
      padding: "constant",
    },
    normalization:
      isCt && props
        ? {
            kind: "ct-clip-zscore",
            clip: [props.percentile_00_5, props.percentile_99_5],
            mean: props.mean,
            std: Math.max(props.std, 1e-8),
          }
        : { kind: "zscore", nonzeroMask: info.useMaskForNorm },
    output: { name: "logits", activation: "softmax" },
    inference: { overlap: 0.5, blend: "gaussian", mirrorAxes: [], stretch: 0 },
    labels,
    outputs: ["seg", "sr", "rtstruct"],
    training: `nnU-Net v2 ${info.trainer ?? "trainer"}, imported by delineate import nnunet`,
    preprocessing: "nnunet",
    nnunet,
  });
  return { manifest, warnings };
}

/** dataset.json's labels as [name, value], in value order; refuses what the runtime would not reproduce. */
function importableLabels(info: ExportInfo): [string, number][] {
  const entries = Object.entries(info.labels).sort((a, b) => a[1] - b[1]);
  if (entries.some(([, v], i) => v !== i))
    throw new DelineateError(
      "DLN_ERR_MODEL_INVALID",
      `dataset.json labels must be 0, 1, 2, ... in order; got ${entries.map(([n, v]) => `${n}=${v}`).join(", ")}`,
    );
  if (entries.length > 256) throw new DelineateError("DLN_ERR_MODEL_INVALID", "more than 255 labels");
  const other = (info.resamplingFunctions ?? []).filter((f) => f && f !== "resample_data_or_seg_to_shape");
  if (other.length)
    throw new DelineateError(
      "DLN_ERR_MODEL_INVALID",
      `plans.json resamples with ${other.join(", ")}; only nnU-Net's default resample_data_or_seg_to_shape is reproduced`,
    );
  if (info.normalization === "CTNormalization" && !info.intensityProperties)
    throw new DelineateError(
      "DLN_ERR_MODEL_INVALID",
      "CTNormalization without foreground_intensity_properties_per_channel in plans.json",
    );
  return entries;
}

/** The manifest's `nnunet` block: what the nnU-Net runtime path runs, taken from plans.json. */
function nnunetBlock(info: ExportInfo, configuration: string, classes: number): NnunetConfig {
  const props = info.intensityProperties;
  const isCt = info.normalization === "CTNormalization";
  const r = (k?: { order: number; order_z: number; force_separate_z: boolean | null }, order = 3) => ({
    order: k?.order ?? order,
    orderZ: k?.order_z ?? 0,
    force: k?.force_separate_z ?? null,
  });
  const rd = r(info.resamplingData, 3),
    rp = r(info.resamplingProbabilities, 1);
  return NnunetConfigSchema.parse({
    configuration,
    transposeForward: info.transposeForward,
    transposeBackward: info.transposeBackward,
    spacing: info.spacing,
    patchSize: info.patchSize,
    classes,
    normalization: {
      scheme: info.normalization,
      useMaskForNorm: info.useMaskForNorm,
      ...(isCt && props
        ? {
            mean: props.mean,
            std: props.std,
            percentile_00_5: props.percentile_00_5,
            percentile_99_5: props.percentile_99_5,
          }
        : {}),
    },
    resampling: {
      dataOrder: rd.order,
      dataOrderZ: rd.orderZ,
      probabilitiesOrder: rp.order,
      probabilitiesOrderZ: rp.orderZ,
      forceSeparateZ: rd.force,
    },
    mirrorAxes: info.mirrorAxes,
  });
}

/** Runs the export and writes <outDir>/<id>/{model.json, fold_K.onnx}; returns the warnings for the user. */
export async function importNnunet(o: ImportOptions): Promise<{ dir: string; warnings: string[] }> {
  const configuration = o.configuration ?? "3d_fullres";
  const folds = o.folds?.length ? o.folds : ["0"];
  for (const f of ["plans.json", "dataset.json"])
    if (!existsSync(path.join(o.folder, f)))
      throw new DelineateError("DLN_ERR_MODEL_INVALID", `${o.folder} is not an nnU-Net trained-model folder: no ${f}`);
  for (const f of folds) {
    const ck = path.join(o.folder, `fold_${f}`, o.checkpoint ?? "checkpoint_final.pth");
    if (!existsSync(ck)) throw new DelineateError("DLN_ERR_MODEL_INVALID", `no checkpoint ${ck}`);
  }
  const dir = path.join(o.outDir, o.id);
  const temp = `${dir}.importing-${process.pid}`;
  rmSync(temp, { recursive: true, force: true });
  mkdirSync(temp, { recursive: true });
  try {
    let stdout: string;
    try {
      ({ stdout } = await exec(
        o.python ?? (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3"),
        [
          path.join(o.root, "training", "nnunet_export.py"),
          "--folder",
          o.folder,
          "--configuration",
          configuration,
          "--folds",
          folds.join(","),
          "--checkpoint",
          o.checkpoint ?? "checkpoint_final.pth",
          "--out",
          temp,
        ],
        { maxBuffer: 1 << 24 },
      ));
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      const why = (e.stderr ?? e.message)
        .trim()
        .split("\n")
        .filter((l) => !/warn/i.test(l))
        .slice(-3)
        .join(" ");
      throw new DelineateError("DLN_ERR_MODEL_INVALID", `nnU-Net export failed: ${why}`, {}, { cause: err });
    }
    const info = JSON.parse(stdout.trim().split("\n").pop() ?? "{}") as ExportInfo;
    const { manifest, warnings } = nnunetManifest(info, { id: o.id, configuration, folder: o.folder });
    writeFileSync(path.join(temp, "model.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(temp, dir);
    return { dir, warnings };
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

/** The CLI's `import nnunet FOLDER --id ID --out MODELS_DIR [--configuration C] [--folds 0,1] [--checkpoint F]`. */
export async function importCommand(
  positionals: readonly string[],
  values: { id?: string; out?: string; configuration?: string; folds?: string; checkpoint?: string },
  root: string,
): Promise<number> {
  const [kind, folder] = positionals;
  if (kind !== "nnunet" || !folder || !values.id || !values.out || positionals.length > 2)
    throw new DelineateError(
      "DLN_ERR_CONFIG_INVALID",
      "import nnunet needs a model FOLDER, --id ID and --out MODELS_DIR",
    );
  const r = await importNnunet({
    folder,
    id: values.id,
    outDir: values.out,
    ...(values.configuration ? { configuration: values.configuration } : {}),
    ...(values.folds ? { folds: values.folds.split(",").map((f) => f.trim()) } : {}),
    ...(values.checkpoint ? { checkpoint: values.checkpoint } : {}),
    root,
  });
  for (const w of r.warnings) process.stderr.write(`delineate: warning: ${w}\n`);
  process.stdout.write(`${r.dir}\n`);
  return 0;
}
