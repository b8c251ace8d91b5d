export * from "../../harness/nodeProcess.js";
