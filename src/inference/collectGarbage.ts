import v8 from "node:v8";
import vm from "node:vm";

/**
 * A full garbage collection, now. onnxruntime-node returns each output in a new buffer of its own that V8 does not
 * count toward its heap, so nothing prompts a collection when one is dropped: with 101 classes a 128³ tile's logits
 * are 808 MiB, and two or three dropped ones were still resident when the next run allocated its own (2.4 GB of a
 * 7.8 GB peak). Collected after each large output, the next run finds them gone. The heap itself is small (typed
 * arrays live outside it), so a collection takes milliseconds against a tile's seconds.
 */
let gc: (() => void) | undefined;
export function collectGarbage(): void {
  if (!gc) {
    v8.setFlagsFromString("--expose-gc");
    gc = vm.runInNewContext("gc") as () => void;
  }
  gc();
}
