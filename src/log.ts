import winston from "winston";

export type Logger = winston.Logger;

/**
 * Structured JSON logs. Callers log UIDs and job ids only: patient names, IDs and birth dates never
 * reach a log line (the end-to-end test greps the whole log for the test patients' identifiers).
 */
export function createLogger(options: { level: string; file?: string; silent?: boolean }): Logger {
  const transports: winston.transport[] = [
    new winston.transports.Console({ stderrLevels: ["error", "warn", "info", "debug"] }),
  ];
  if (options.file) transports.push(new winston.transports.File({ filename: options.file }));
  return winston.createLogger({
    level: options.level,
    silent: options.silent ?? false,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports,
  });
}
