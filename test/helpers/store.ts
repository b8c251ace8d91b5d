// the throw-away job stores the bench uses too live in harness/
export * from "../../harness/store.js";
