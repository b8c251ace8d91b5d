import { readSync, writeSync } from "node:fs";
import { DelineateError } from "./errors.js";

/**
 * `length` bytes of an open file from `position`, in a Uint8Array with its own ArrayBuffer (so a typed view of
 * them costs no copy), or in `into` (`length` bytes) when given. readSync may return fewer bytes than asked: it is
 * called until all have come.
 * @throws DelineateError DLN_ERR_INTERNAL when the file ends first: this helper cannot tell a bug from a bad input
 * file, so readers of input files refuse it with their own code and the file's name (readPart10Lazily).
 */
export function readAt(fd: number, position: number, length: number, into?: Uint8Array): Uint8Array {
  const out = into ?? new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, position + done);
    if (n === 0) {
      throw new DelineateError(
        "DLN_ERR_INTERNAL",
        `the file ends at byte ${position + done}, before the ${length} bytes it declares`,
        { position, length },
      );
    }
    done += n;
  }
  return out;
}

/** Writes all of `bytes` at `position` (writeSync may write fewer than asked). */
export function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  for (let done = 0; done < bytes.byteLength; )
    done += writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
}
