/**
 * Reads a Siemens CSA header ((0029,xx10) image / (0029,xx20) series info, "SV10" format): a list of named
 * elements, each with string items. Only what mosaics need is read from it (SliceNormalVector), but the whole
 * list is parsed so a name is found wherever it sits.
 * @returns name → item strings; empty when the bytes are not a CSA2 header.
 */
export function readCsaHeader(bytes: Uint8Array): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = (at: number, len: number) => {
    const raw = bytes.subarray(at, Math.min(at + len, bytes.byteLength));
    const nul = raw.indexOf(0);
    return new TextDecoder("latin1").decode(nul >= 0 ? raw.subarray(0, nul) : raw).trim();
  };
  if (bytes.byteLength < 16 || text(0, 4) !== "SV10") return out;
  const tags = view.getUint32(8, true);
  let at = 16;
  for (let t = 0; t < tags && at + 84 <= bytes.byteLength; t++) {
    const name = text(at, 64);
    const items = view.getUint32(at + 76, true);
    at += 84;
    const values: string[] = [];
    for (let i = 0; i < items && at + 16 <= bytes.byteLength; i++) {
      const len = view.getUint32(at + 4, true);
      at += 16;
      if (len > 0) values.push(text(at, len));
      at += Math.ceil(len / 4) * 4;
    }
    out.set(name, values);
  }
  return out;
}
