import { readFileSync } from "node:fs";
import path from "node:path";
import { DelineateError } from "../errors.js";
import { type Config, ConfigSchema } from "./schema.js";

/** Environment variables that override the file; values from the environment win. */
const ENV_OVERRIDES: ReadonlyArray<[string, (raw: Record<string, any>, value: string) => void]> = [
  ["DELINEATE_PACS_URL", (c, v) => ((c.pacs ??= {}).url = v)],
  ["DELINEATE_PACS_USERNAME", (c, v) => ((c.pacs ??= {}).username = v)],
  ["DELINEATE_PACS_PASSWORD", (c, v) => ((c.pacs ??= {}).password = v)],
  ["DELINEATE_PACS_CA_FILE", (c, v) => ((c.pacs ??= {}).caFile = path.resolve(v))],
  ["DELINEATE_DATA_DIR", (c, v) => (c.dataDir = path.resolve(v))],
  ["DELINEATE_HTTP_PORT", (c, v) => ((c.http ??= {}).port = Number(v))],
  ["DELINEATE_HTTP_HOST", (c, v) => ((c.http ??= {}).host = v)],
  ["DELINEATE_API_TOKEN", (c, v) => ((c.http ??= {}).apiToken = v)],
  ["DELINEATE_LOG_LEVEL", (c, v) => ((c.log ??= {}).level = v)],
  ["DELINEATE_MODEL_ID", (c, v) => ((c.model ??= {}).id = v)],
];

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Reads a JSON configuration file, applies environment overrides, validates against the schema and
 * freezes the result. Relative paths in the file are taken relative to the file's own folder.
 * @throws DelineateError DLN_ERR_CONFIG_INVALID naming the file and every offending field.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  let raw: Record<string, any>;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new DelineateError("DLN_ERR_CONFIG_INVALID", `cannot read configuration ${file}: ${(err as Error).message}`, {
      file,
    });
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    throw new DelineateError("DLN_ERR_CONFIG_INVALID", `configuration ${file} must be a JSON object`, { file });
  }
  const base = path.dirname(path.resolve(file));
  if (typeof raw.dataDir === "string") raw.dataDir = path.resolve(base, raw.dataDir);
  if (typeof raw.model?.dir === "string") raw.model.dir = path.resolve(base, raw.model.dir);
  for (const [name, apply] of ENV_OVERRIDES) {
    const value = env[name];
    if (value !== undefined && value !== "") apply(raw, value);
  }
  if (env.DELINEATE_PACS_PASSWORD_FILE) (raw.pacs ??= {}).passwordFile = path.resolve(env.DELINEATE_PACS_PASSWORD_FILE);
  const servers: [string, Record<string, unknown>][] = [["pacs", raw.pacs]];
  if (raw.destinations && typeof raw.destinations === "object")
    servers.push(
      ...Object.entries(raw.destinations as Record<string, Record<string, unknown>>).map(
        ([k, v]) => [`destinations.${k}`, v] as [string, Record<string, unknown>],
      ),
    );
  for (const [where, server] of servers) {
    if (!server || typeof server !== "object") continue;
    if (typeof server.caFile === "string") server.caFile = path.resolve(base, server.caFile);
    // A password may come from a secret file (a mounted Docker/Kubernetes secret) rather than the config.
    if (typeof server.passwordFile === "string") {
      const passwordFile = path.resolve(base, server.passwordFile);
      delete server.passwordFile;
      try {
        server.password = readFileSync(passwordFile, "utf8").trim();
      } catch (err) {
        throw new DelineateError(
          "DLN_ERR_CONFIG_INVALID",
          `cannot read the ${where === "pacs" ? "PACS" : where} password file ${passwordFile}: ${(err as Error).message}`,
          { file: passwordFile },
        );
      }
    }
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new DelineateError("DLN_ERR_CONFIG_INVALID", `invalid configuration ${file}: ${problems}`, { file });
  }
  return deepFreeze(parsed.data);
}
