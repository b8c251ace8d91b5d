import { readFileSync } from "node:fs";
import path from "node:path";
import { DelineateError } from "../errors.js";
import { readJsonFile } from "../jsonFile.js";
import { type Config, ConfigSchema } from "./schema.js";

type RawConfig = Record<string, unknown>;

/** The object at `raw[key]`, made when absent (environment overrides may name a section the file leaves out). */
function section(raw: RawConfig, key: string): RawConfig {
  const value = raw[key];
  if (value && typeof value === "object" && !Array.isArray(value)) return value as RawConfig;
  const made: RawConfig = {};
  raw[key] = made;
  return made;
}

/** Environment variables that override the file (values from the environment win): [variable, section, field, convert]. */
const ENV_OVERRIDES: ReadonlyArray<[string, string | undefined, string, (value: string) => unknown]> = [
  ["DELINEATE_PACS_URL", "pacs", "url", String],
  ["DELINEATE_PACS_USERNAME", "pacs", "username", String],
  ["DELINEATE_PACS_PASSWORD", "pacs", "password", String],
  ["DELINEATE_PACS_CA_FILE", "pacs", "caFile", (v) => path.resolve(v)],
  ["DELINEATE_DATA_DIR", undefined, "dataDir", (v) => path.resolve(v)],
  ["DELINEATE_HTTP_PORT", "http", "port", Number],
  ["DELINEATE_HTTP_HOST", "http", "host", String],
  ["DELINEATE_API_TOKEN", "http", "apiToken", String],
  ["DELINEATE_LOG_LEVEL", "log", "level", String],
  ["DELINEATE_MODEL_ID", "model", "id", String],
  ["DELINEATE_STORE_URL", "store", "url", String],
  ["DELINEATE_ROLES", undefined, "roles", (v) => v.split(",").map((r) => r.trim())],
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
  const json = readJsonFile(file, "DLN_ERR_CONFIG_INVALID", (why) => `cannot read configuration ${file}: ${why}`, {
    file,
  });
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw new DelineateError("DLN_ERR_CONFIG_INVALID", `configuration ${file} must be a JSON object`, { file });
  }
  const raw = json as RawConfig;
  const base = path.dirname(path.resolve(file));
  if (typeof raw.dataDir === "string") raw.dataDir = path.resolve(base, raw.dataDir);
  const model = raw.model as RawConfig | undefined;
  if (typeof model?.dir === "string") model.dir = path.resolve(base, model.dir);
  for (const [name, key, field, convert] of ENV_OVERRIDES) {
    const value = env[name];
    if (value !== undefined && value !== "") (key ? section(raw, key) : raw)[field] = convert(value);
  }
  if (env.DELINEATE_PACS_PASSWORD_FILE)
    section(raw, "pacs").passwordFile = path.resolve(env.DELINEATE_PACS_PASSWORD_FILE);
  const servers: [string, Record<string, unknown>][] = [["pacs", raw.pacs as Record<string, unknown>]];
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
          { cause: err },
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
