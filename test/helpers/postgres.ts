export * from "../../harness/postgres.js";
