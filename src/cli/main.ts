#!/usr/bin/env node
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadConfig } from "../config/load.js";
import { DelineateError } from "../errors.js";
import { createLogger } from "../log.js";
import { loadModelPackage } from "../models/loadModel.js";
import { startNode } from "../node.js";
import { writePhantomSeries } from "../volume/phantom.js";
import { readdirSync } from "node:fs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const DEFAULT_CONFIG = path.join(ROOT, "config", "default.json");

const USAGE = `usage: delineate <command> [options]

commands:
  serve [--config FILE]         run the node: ingest, jobs, HTTP API (default config: config/default.json)
  models [--config FILE]        list installed model packages and whether each loads
  phantom --out DIR [--slices N] [--size N]
                                write a synthetic thorax CT series (the demo's fallback sample)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: { config: { type: "string" }, out: { type: "string" }, slices: { type: "string" }, size: { type: "string" }, help: { type: "boolean" } },
    allowPositionals: false,
  });
  if (!command || values.help || command === "help") {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  const configFile = values.config ?? DEFAULT_CONFIG;
  switch (command) {
    case "serve": {
      const config = loadConfig(configFile);
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
    }
    case "models": {
      const config = loadConfig(configFile);
      let bad = 0;
      for (const id of readdirSync(config.model.dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)) {
        try {
          const pkg = loadModelPackage(config.model.dir, id);
          process.stdout.write(`${id}\t${pkg.manifest.version}\tok\t${pkg.manifest.name}${id === config.model.id ? " (default)" : ""}\n`);
        } catch (err) {
          bad++;
          process.stdout.write(`${id}\t-\tinvalid\t${(err as Error).message}\n`);
        }
      }
      return bad ? 1 : 0;
    }
    case "phantom": {
      if (!values.out) throw new DelineateError("DLN_ERR_CONFIG_INVALID", "phantom needs --out DIR");
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
    }
    default:
      process.stderr.write(`unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err instanceof DelineateError ? `${err.code}: ${err.message}` : err instanceof Error ? err.stack ?? err.message : String(err);
    process.stderr.write(`delineate: ${e}\n`);
    process.exit(1);
  },
);
