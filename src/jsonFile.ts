import { readFileSync } from "node:fs";
import { DelineateError, type ErrorCode } from "./errors.js";

/**
 * The parsed JSON of a file Delineate is given (a configuration, a model manifest): a missing, unreadable or malformed
 * file is a DelineateError with the reader's own `code`, its message `describe(reason)`, and what was caught as cause.
 */
export function readJsonFile(
  file: string,
  code: ErrorCode,
  describe: (reason: string) => string,
  context: Record<string, string | number>,
): unknown {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new DelineateError(code, describe((err as Error).message), context, { cause: err });
  }
}
