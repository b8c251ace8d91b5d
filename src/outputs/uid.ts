import { createHash, randomUUID } from "node:crypto";

/**
 * A new UID under `root`. Under "2.25" it is the UUID as a decimal integer, always below 2^128 as the
 * standard requires (dcmjs's own uid() is not: ~73% of its values exceed 2^128). Under any other root, the
 * UUID's decimal digits are appended and cut to the 64-character limit.
 */
export function newUid(root: string): string {
  const n = BigInt(`0x${randomUUID().replace(/-/g, "")}`).toString();
  return `${root}.${n}`.slice(0, 64);
}

/** A UID under `root` derived from a name (its SHA-256 cut to 128 bits, as newUid writes a UUID): the same name always gives the same UID. */
export function uidFromName(root: string, name: string): string {
  const n = BigInt(`0x${createHash("sha256").update(name).digest("hex").slice(0, 32)}`).toString();
  return `${root}.${n}`.slice(0, 64);
}

/** The SR's Device Observer UID for a node: derived from its serial number, so the same node is always the same observer. */
export function deviceObserverUid(outputs: { uidRoot: string; deviceSerialNumber: string }): string {
  return uidFromName(outputs.uidRoot, `delineate-device:${outputs.deviceSerialNumber}`);
}
