/**
 * Protocol Buffers at the wire level: a message read as its fields in order (number, wire type, the bytes they span),
 * and fields written back. Enough to cut and splice an ONNX file without its schema, every untouched byte kept as it
 * was (a generic protobuf library would need all of onnx.proto to re-encode a model without dropping fields).
 */
import { DelineateError } from "../errors.js";

export interface WireField {
  field: number;
  /** 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
  wire: number;
  /** the whole field, tag included: bytes.subarray(start, end) */
  start: number;
  end: number;
  /** a varint's value (exact below 2^53), or where a length-delimited field's payload begins */
  value: number;
}

function malformed(why: string, at: number): DelineateError {
  return new DelineateError("DLN_ERR_MODEL_INVALID", `malformed ONNX protobuf: ${why} at byte ${at}`, { at });
}

/** A varint at `at`: its value (as a double, exact below 2^53) and the offset after it. */
function readVarint(bytes: Uint8Array, at: number): [number, number] {
  let value = 0,
    scale = 1,
    i = at;
  for (;;) {
    if (i >= bytes.length || i - at > 9) throw malformed("varint runs past the end", at);
    const b = bytes[i++]!;
    value += (b & 0x7f) * scale;
    scale *= 128;
    if (b < 0x80) return [value, i];
  }
}

/** The fields of one message, in the order they are stored. */
export function readFields(bytes: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  let at = 0;
  while (at < bytes.length) {
    const start = at;
    const [tag, afterTag] = readVarint(bytes, at);
    const field = Math.floor(tag / 8),
      wire = tag % 8;
    let value = 0;
    if (wire === 0) [value, at] = readVarint(bytes, afterTag);
    else if (wire === 1) at = afterTag + 8;
    else if (wire === 5) at = afterTag + 4;
    else if (wire === 2) {
      const [length, payload] = readVarint(bytes, afterTag);
      value = payload;
      at = payload + length;
    } else throw malformed(`wire type ${wire}`, start);
    if (at > bytes.length) throw malformed(`field ${field} runs past the end`, start);
    fields.push({ field, wire, start, end: at, value });
  }
  return fields;
}

/** A length-delimited field's payload. */
export const payload = (bytes: Uint8Array, f: WireField): Uint8Array => bytes.subarray(f.value, f.end);

/** A length-delimited field's payload as UTF-8 text (names, op types). */
export const text = (bytes: Uint8Array, f: WireField): string => new TextDecoder().decode(payload(bytes, f));

/** The values of a repeated integer field, packed (wire type 2) or not (wire type 0). */
export function integers(bytes: Uint8Array, fields: readonly WireField[], field: number): number[] {
  const out: number[] = [];
  for (const f of fields) {
    if (f.field !== field) continue;
    if (f.wire === 0) out.push(f.value);
    else if (f.wire === 2)
      for (let at = f.value; at < f.end; ) {
        const [v, next] = readVarint(bytes, at);
        out.push(v);
        at = next;
      }
  }
  return out;
}

function varint(value: number): number[] {
  const out: number[] = [];
  while (value >= 0x80) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

/** A length-delimited field: tag, length, payload. */
export function lengthDelimited(field: number, body: Uint8Array): Uint8Array {
  const head = [...varint(field * 8 + 2), ...varint(body.length)];
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** A varint field: tag and value. */
export const varintField = (field: number, value: number): Uint8Array =>
  Uint8Array.from([...varint(field * 8), ...varint(value)]);

/** Byte arrays end to end. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
