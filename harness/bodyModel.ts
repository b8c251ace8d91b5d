import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { loadModelPackage, type ModelPackage } from "../src/models/loadModel.js";
import { ROOT } from "./tools.js";

/**
 * `ct-body` with its network's Body intersected with the classical outline (`combine: "intersect"`): as shipped
 * (`replace`) the engine does not run its network at all, and tests about running a network (on a worker, on
 * WebGPU, killed or cancelled mid-run) need it run.
 */
export function bodyModelRunningItsNetwork(): ModelPackage {
  const model = loadModelPackage(path.join(ROOT, "models"), "ct-body");
  const external = { ...model.manifest.postprocessing.external!, combine: "intersect" as const };
  return { ...model, manifest: { ...model.manifest, postprocessing: { ...model.manifest.postprocessing, external } } };
}

/** The same package written to `<dir>/ct-body`, for a node process; returns the configuration's `model`. */
export function writeBodyModelRunningItsNetwork(dir: string): { dir: string; id: string } {
  const model = bodyModelRunningItsNetwork();
  const modelDir = path.join(dir, "ct-body");
  mkdirSync(modelDir, { recursive: true });
  writeFileSync(path.join(modelDir, "model.json"), JSON.stringify(model.manifest));
  for (const f of model.onnxPaths) copyFileSync(f, path.join(modelDir, path.basename(f)));
  return { dir, id: "ct-body" };
}
