import { createRequire } from "node:module";
import type dcmjsModule from "dcmjs";

export type Dcmjs = typeof dcmjsModule;

/** dcmjs once loaded: a module handle, as a static import would hold. */
let loaded: Dcmjs | undefined;

/**
 * dcmjs, loaded on first use rather than when Delineate's modules load: `convert` and folder scans read their files
 * with our own reader and never need it, and loading its 28,000 lines costs ~50 ms of CPU. Required synchronously
 * (its CommonJS build: the same code), so the synchronous parsers can fall back to it. Every module of src/ takes
 * dcmjs from here, so one copy is loaded, with its logging quietened once.
 */
export function dcmjs(): Dcmjs {
  if (!loaded) {
    const library = createRequire(import.meta.url)("dcmjs") as Dcmjs;
    library.log.setLevel("silent");
    // dcmjs reports each ambiguous dictionary VR ("xs", "ox") it resolves as an error on the console; it resolves
    // them as the standard says (US/OW when the file does not tell), so the lines are noise in convert's stderr
    library.log.getLogger("validation.dcmjs").setLevel("silent");
    loaded = library;
  }
  return loaded;
}
