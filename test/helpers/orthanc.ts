export * from "../../harness/orthanc.js";
