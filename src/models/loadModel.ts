import { existsSync } from "node:fs";
import path from "node:path";
import { DelineateError } from "../errors.js";
import { readJsonFile } from "../jsonFile.js";
import { ManifestSchema, type ModelManifest } from "./manifest.js";

/** A model package found on disk and validated: its manifest and the absolute paths of its ONNX files. */
export interface ModelPackage {
  manifest: ModelManifest;
  dir: string;
  onnxPaths: string[];
}

/**
 * Loads `<modelsDir>/<id>/model.json`, validates it and checks the ONNX files exist.
 * @throws DelineateError DLN_ERR_MODEL_INVALID with the package and every problem found; a bad
 * manifest is refused whole, never half-used.
 */
export function loadModelPackage(modelsDir: string, id: string): ModelPackage {
  const dir = path.join(modelsDir, id);
  const file = path.join(dir, "model.json");
  const raw = readJsonFile(file, "DLN_ERR_MODEL_INVALID", (why) => `model ${id}: cannot read ${file}: ${why}`, {
    model: id,
  });
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new DelineateError("DLN_ERR_MODEL_INVALID", `model ${id}: invalid manifest ${file}: ${problems}`, {
      model: id,
    });
  }
  if (parsed.data.id !== id)
    throw new DelineateError("DLN_ERR_MODEL_INVALID", `model ${id}: manifest id is "${parsed.data.id}"`, { model: id });
  const onnxPaths = parsed.data.files.map((f) => path.join(dir, f));
  const missing = onnxPaths.filter((p) => !existsSync(p));
  if (missing.length)
    throw new DelineateError("DLN_ERR_MODEL_INVALID", `model ${id}: missing ${missing.join(", ")}`, { model: id });
  return { manifest: parsed.data, dir, onnxPaths };
}
