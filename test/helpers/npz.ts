export * from "../../harness/npz.js";
