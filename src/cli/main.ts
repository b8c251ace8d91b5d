#!/usr/bin/env node
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Config } from "../config/schema.js";
import { DelineateError } from "../errors.js";
import { readJsonFile } from "../jsonFile.js";
import type { OutputKind } from "../route/rules.js";
import type { SegmentFolderReport } from "./segmentFolder.js";

// each command imports what it needs when it runs: the node's server, inference and output modules take a few
// hundred milliseconds to load, which `convert` of one series should not pay

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const DEFAULT_CONFIG = path.join(ROOT, "config", "default.json");

const USAGE = `usage: delineate <command> [options]

commands:
  serve [--config FILE] [--role ingest,api,worker]
                                run the node: ingest, jobs, HTTP API (default config: config/default.json; roles
                                default all three, or DELINEATE_ROLES)
  models [--config FILE]        list installed model packages and whether each loads
  segment FOLDER --out DIR [--model ID] [--format seg,sr,rtstruct,sc] [--config FILE]
                                segment every series of FOLDER the model takes, offline; writes
                                DIR/<study>/<series>/<format>.dcm (defaults: the configured model, its outputs)
  segment FILE.nii[.gz] --out DIR --model ID [--probabilities]
                                one NIfTI image through an imported nnU-Net model; writes DIR/<name>.nii.gz
                                (and DIR/<name>_probabilities.npy, [C, k, j, i] as nnU-Net's npz holds them)
  import nnunet FOLDER --id ID --out MODELS_DIR [--configuration 3d_fullres] [--folds 0,1] [--checkpoint FILE]
                                turn a trained nnU-Net v2 model folder into a model package (needs python3-torch)
  convert FOLDER --out FILE.nii.gz [--config FILE]
                                every series of FOLDER as NIfTI (one file, or FILE_s<SeriesNumber>.nii.gz each)
  store migrate --from sqlite:PATH --to postgres://USER:PASSWORD@HOST:PORT/DB
                                copy a stopped node's SQLite job store (jobs, cursors, ingest state) into PostgreSQL
  phantom --out DIR [--slices N] [--size N]
                                write a synthetic thorax CT series (the demo's fallback sample)
`;

/** The command line's options, as parseArgs gives them. */
interface Options {
  config?: string;
  out?: string;
  slices?: string;
  size?: string;
  model?: string;
  format?: string;
  help?: boolean;
  id?: string;
  configuration?: string;
  folds?: string;
  checkpoint?: string;
  probabilities?: boolean;
  role?: string;
  from?: string;
  to?: string;
}

/**
 * One command: its options and positionals, and the configuration file it reads (read, and the schema's library
 * loaded, only when it needs it).
 */
type Command = (values: Options, positionals: string[], config: () => Promise<Readonly<Config>>) => Promise<number>;

async function main(argv: string[]): Promise<number> {
  // asking for help is a success: `delineate --help` and `-h` print the usage and exit 0
  if (argv[0] === "--help" || argv[0] === "-h") {
    process.stdout.write(USAGE);
    return 0;
  }
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      config: { type: "string" },
      out: { type: "string" },
      slices: { type: "string" },
      size: { type: "string" },
      model: { type: "string" },
      format: { type: "string" },
      help: { type: "boolean", short: "h" },
      id: { type: "string" },
      configuration: { type: "string" },
      folds: { type: "string" },
      checkpoint: { type: "string" },
      probabilities: { type: "boolean" },
      role: { type: "string" },
      from: { type: "string" },
      to: { type: "string" },
    },
    allowPositionals: command === "segment" || command === "convert" || command === "import" || command === "store",
  });
  if (!command || values.help || command === "help") {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  const configFile = values.config ?? DEFAULT_CONFIG;
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!run) {
    process.stderr.write(`unknown command "${command}"\n${USAGE}`);
    return 2;
  }
  // --role wins over DELINEATE_ROLES, as the environment wins over the file
  const env = values.role ? { ...process.env, DELINEATE_ROLES: values.role } : process.env;
  return run(values, positionals, async () => (await import("../config/load.js")).loadConfig(configFile, env));
}

/** `serve`: runs the node until SIGINT or SIGTERM. */
const serve: Command = async (_values, _positionals, readConfig) => {
  const [{ createLogger }, { startNode }] = await Promise.all([import("../log.js"), import("../node.js")]);
  const config = await readConfig();
  const log = createLogger({ level: config.log.level, ...(config.log.file ? { file: config.log.file } : {}) });
  const node = await startNode(config, log);
  const stop = async (signal: string) => {
    log.info("stopping", { signal });
    await node.stop();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
  return new Promise<number>(() => {});
};

/** `store migrate`: a stopped node's SQLite job store copied into PostgreSQL. */
const store: Command = async (values, positionals) => {
  if (positionals[0] !== "migrate" || positionals.length > 1 || !values.from || !values.to) {
    process.stderr.write(USAGE);
    return 2;
  }
  const [{ migrateStore }, { newUid }] = await Promise.all([
    import("../jobs/migrateStore.js"),
    import("../outputs/uid.js"),
  ]);
  // copying makes no output UIDs (each job keeps its own); the generator is only there for the store's type
  const added = await migrateStore(values.from, values.to, () => newUid("2.25"));
  process.stdout.write(`${JSON.stringify(added)}\n`);
  return 0;
};

/** `models`: each installed model package, its version and whether it loads. */
const models: Command = async (_values, _positionals, readConfig) => {
  const { loadModelPackage } = await import("../models/loadModel.js");
  const config = await readConfig();
  let bad = 0;
  for (const id of readdirSync(config.model.dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)) {
    try {
      const pkg = loadModelPackage(config.model.dir, id);
      // an imported nnU-Net model's labels carry placeholder codes until the site fills in SNOMED CT
      const uncoded = pkg.manifest.labels.filter((l) => l.type.scheme === "99DLN").length;
      const note = uncoded ? `\t(${uncoded} label(s) without SNOMED CT codes: fill them in model.json)` : "";
      process.stdout.write(
        `${id}\t${pkg.manifest.version}\tok\t${pkg.manifest.name}${id === config.model.id ? " (default)" : ""}${note}\n`,
      );
    } catch (err) {
      bad++;
      process.stdout.write(`${id}\t-\tinvalid\t${(err as Error).message}\n`);
    }
  }
  return bad ? 1 : 0;
};

/** `segment`: every series of a folder the model takes, segmented offline, its outputs written under --out. */
const segment: Command = async (values, positionals, readConfig) => {
  const [folder] = positionals;
  if (!folder || !values.out || positionals.length > 1)
    throw new DelineateError("DLN_ERR_CONFIG_INVALID", "segment needs one FOLDER and --out DIR");
  if (/\.nii(\.gz)?$/i.test(folder)) {
    const { segmentNiftiCommand } = await import("./segmentNifti.js");
    return segmentNiftiCommand(folder, values.out, values.model, values.probabilities ?? false, await readConfig());
  }
  const [
    { createLogger },
    { loadModelPackage },
    { resolveRules },
    { InferenceWorker },
    { segmentFolder },
    { loadPixelDecoders },
    { deviceObserverUid, newUid },
    { VERSION },
  ] = await Promise.all([
    import("../log.js"),
    import("../models/loadModel.js"),
    import("../route/rules.js"),
    import("../inference/inferenceWorker.js"),
    import("./segmentFolder.js"),
    import("../dicom/pixelDecoders.js"),
    import("../outputs/uid.js"),
    import("../version.js"),
  ]);
  const config = await readConfig();
  const log = createLogger({ level: "warn" });
  const model = loadModelPackage(config.model.dir, values.model ?? config.model.id);
  const [rule] = resolveRules(undefined, model.manifest.id, () => model.manifest);
  if (!rule) throw new DelineateError("DLN_ERR_CONFIG_INVALID", `model ${model.manifest.id} gives no routing rule`);
  const formats = outputFormats(values.format, rule.outputs);
  const inference = await InferenceWorker.start(model, config.inference, log);
  const bar = process.stderr.isTTY ? progressBar : undefined;
  try {
    const report = await segmentFolder({
      folder,
      out: values.out,
      model,
      rule,
      formats,
      inference,
      settings: config.outputs,
      volume: { ...config.volume, decoders: await loadPixelDecoders() },
      softwareVersion: VERSION,
      deviceObserverUID: deviceObserverUid(config.outputs),
      newUid: () => newUid(config.outputs.uidRoot),
      ...(bar ? { progress: bar } : {}),
    });
    return reportSegmentFolder(report, folder, model.manifest.id);
  } finally {
    await inference.close();
  }
};

/** The outputs --format asks for (default: the rule's), refused when unknown or an SR without its SEG. */
function outputFormats(format: string | undefined, ruleOutputs: readonly OutputKind[]): OutputKind[] {
  const formats = format ? format.split(",").map((f) => f.trim()) : [...ruleOutputs];
  const unknown = formats.filter((f) => !["seg", "sr", "rtstruct", "sc"].includes(f));
  if (unknown.length || !formats.length)
    throw new DelineateError(
      "DLN_ERR_CONFIG_INVALID",
      `--format takes seg, sr, rtstruct and sc, not "${unknown.join(",")}"`,
    );
  if (formats.includes("sr") && !formats.includes("seg"))
    throw new DelineateError("DLN_ERR_CONFIG_INVALID", "--format sr needs seg too: the SR references the SEG");
  return formats as OutputKind[];
}

/** A progress bar on stderr, redrawn in place: series done of the total. */
function progressBar(done: number, total: number): void {
  const width = 30,
    filled = Math.round((done / total) * width);
  process.stderr.write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total} series`);
  if (done === total) process.stderr.write("\n");
}

/** What `segment` did: files written on stdout, the rest on stderr; the exit status (1 if any failed or none written). */
function reportSegmentFolder(report: SegmentFolderReport, folder: string, modelId: string): number {
  for (const u of report.unreadable) process.stderr.write(`delineate: skipped ${u.file}: ${u.reason}\n`);
  for (const s of report.skipped)
    process.stderr.write(`delineate: series ${s.seriesInstanceUID} not taken: ${s.reason}\n`);
  for (const f of report.failed)
    process.stderr.write(`delineate: series ${f.seriesInstanceUID} failed: ${f.code}: ${f.message}\n`);
  for (const w of report.warnings) process.stderr.write(`delineate: warning: ${w}\n`);
  for (const w of report.written) for (const f of w.files) process.stdout.write(`${f}\n`);
  if (!report.written.length && !report.failed.length)
    process.stderr.write(`delineate: no series in ${folder} is one ${modelId} takes\n`);
  return report.failed.length || !report.written.length ? 1 : 0;
}

/** `convert`: every series of a folder as NIfTI. */
const convert: Command = async (values, positionals, readConfig) => {
  const [folder] = positionals;
  if (!folder || !values.out || positionals.length > 1 || !/\.nii(\.gz)?$/.test(values.out)) {
    throw new DelineateError("DLN_ERR_CONFIG_INVALID", "convert needs one FOLDER and --out FILE.nii or FILE.nii.gz");
  }
  const { convertFolder } = await import("./convertFolder.js");
  // convert reads only the volume section: without one (the default file's case) it has the schema's defaults
  // (DEFAULT_VOLUME_OPTIONS, test/unit/config.test.ts), and the whole file is not validated, which takes loading zod:
  // a tenth of converting a 300-slice CT
  const configFile = values.config ?? DEFAULT_CONFIG;
  const raw = readJsonFile(
    configFile,
    "DLN_ERR_CONFIG_INVALID",
    (why) => `cannot read configuration ${configFile}: ${why}`,
    {
      file: configFile,
    },
  );
  const plain = raw !== null && typeof raw === "object" && !Array.isArray(raw);
  const volume = plain && !("volume" in raw) ? {} : (await readConfig()).volume; // a bad file: loadConfig says why
  const report = await convertFolder(folder, values.out, volume);
  for (const u of report.unreadable) process.stderr.write(`delineate: skipped ${u.file}: ${u.reason}\n`);
  for (const s of report.skipped)
    process.stderr.write(`delineate: series ${s.seriesInstanceUID} has no image to convert: ${s.reason}\n`);
  for (const f of report.failed)
    process.stderr.write(`delineate: series ${f.seriesInstanceUID} not converted: ${f.code}: ${f.message}\n`);
  for (const w of report.warnings) process.stderr.write(`delineate: warning: ${w}\n`);
  for (const w of report.written) process.stdout.write(`${w.file}\n`);
  return report.failed.length || !report.written.length ? 1 : 0;
};

/** `phantom`: a synthetic thorax CT series written to --out. */
const phantom: Command = async (values) => {
  if (!values.out) throw new DelineateError("DLN_ERR_CONFIG_INVALID", "phantom needs --out DIR");
  const { writePhantomSeries } = await import("../fixtures/phantom.js");
  const r = writePhantomSeries(values.out, {
    size: Number(values.size ?? 256),
    slices: Number(values.slices ?? 48),
    pixelSpacing: 1.5,
    sliceSpacing: 3,
    patientName: "Phantom^Delineate",
    patientID: "PHANTOM-0001",
  });
  process.stdout.write(`${r.files.length} slices in ${values.out}\nStudyInstanceUID ${r.studyInstanceUID}\n`);
  return 0;
};

/** `import nnunet`: a trained nnU-Net v2 model folder as a model package. */
const importModel: Command = async (values, positionals) =>
  (await import("./importNnunet.js")).importCommand(positionals, values, ROOT);

const COMMANDS: Readonly<Record<string, Command>> = {
  serve,
  store,
  models,
  segment,
  import: importModel,
  convert,
  phantom,
};

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e =
      err instanceof DelineateError
        ? `${err.code}: ${err.message}`
        : err instanceof Error
          ? (err.stack ?? err.message)
          : String(err);
    process.stderr.write(`delineate: ${e}\n`);
    process.exit(1);
  },
);
