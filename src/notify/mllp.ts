import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { DelineateError } from "../errors.js";

/**
 * MLLP (HL7 v2's Minimal Lower Layer Protocol): a message travels as VT, the message, FS CR. Written here rather
 * than taken from npm: node-hl7-client 4 needs Node 22; its 3.x line, which runs on 20, brings its own reconnecting,
 * queueing client, a second retry policy beside the outbox's, where the outbox needs one exchange it controls
 * (send, await the ACK or a timeout, close); mllp-node is a server-side frame parser. The framing is three bytes.
 */
const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;

/**
 * The peer's CA file, read once when the node starts, so a wrong path stops the node instead of failing every
 * notification. @throws DelineateError DLN_ERR_CONFIG_INVALID when it cannot be read.
 */
export function readPeerCa(caFile: string): string {
  try {
    return readFileSync(caFile, "utf8");
  } catch (err) {
    throw new DelineateError(
      "DLN_ERR_CONFIG_INVALID",
      `cannot read notify.hl7.tls.caFile ${caFile}: ${(err as Error).message}`,
      { file: caFile },
      { cause: err },
    );
  }
}

export function mllpFrame(message: string): Buffer {
  return Buffer.concat([Buffer.from([VT]), Buffer.from(message, "utf8"), Buffer.from([FS, CR])]);
}

/** Collects bytes from a stream and hands out the whole frames they hold (a frame may come in pieces). */
export class MllpReader {
  private buf = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const frames: string[] = [];
    for (;;) {
      const start = this.buf.indexOf(VT);
      if (start < 0) {
        this.buf = Buffer.alloc(0);
        return frames;
      }
      const end = this.buf.indexOf(Buffer.from([FS, CR]), start + 1);
      if (end < 0) {
        this.buf = this.buf.subarray(start);
        return frames;
      }
      frames.push(this.buf.subarray(start + 1, end).toString("utf8"));
      this.buf = this.buf.subarray(end + 2);
    }
  }
}

export interface MllpPeer {
  host: string;
  port: number;
  /** TLS to the peer; ca: PEM of the CA(s) to trust besides the system's (read by readPeerCa at start-up) */
  tls?: { ca?: string; servername?: string };
  /** how long to wait for the connection and then for the ACK */
  ackTimeoutMs: number;
}

/**
 * Sends one message over a fresh connection and resolves with the peer's first reply frame (the ACK), then closes.
 * @throws DelineateError DLN_ERR_NOTIFY_UNAVAILABLE when the peer cannot be reached, closes the connection before
 * answering, or does not answer within ackTimeoutMs.
 */
export function mllpExchange(peer: MllpPeer, message: string): Promise<string> {
  const where = `${peer.host}:${peer.port}`;
  return new Promise((resolve, reject) => {
    const socket = peer.tls
      ? tls.connect({
          host: peer.host,
          port: peer.port,
          servername: peer.tls.servername ?? peer.host,
          ...(peer.tls.ca ? { ca: peer.tls.ca } : {}),
        })
      : net.connect({ host: peer.host, port: peer.port });
    const reader = new MllpReader();
    let settled = false;
    const fail = (why: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(
        new DelineateError(
          "DLN_ERR_NOTIFY_UNAVAILABLE",
          `HL7 peer ${where}: ${why}`,
          { peer: where },
          cause ? { cause } : undefined,
        ),
      );
    };
    const timer = setTimeout(() => fail(`no ACK within ${peer.ackTimeoutMs} ms`), peer.ackTimeoutMs);
    socket.once(peer.tls ? "secureConnect" : "connect", () => socket.write(mllpFrame(message)));
    socket.on("data", (chunk: Buffer) => {
      const [reply] = reader.push(chunk);
      if (reply === undefined || settled) return;
      settled = true;
      clearTimeout(timer);
      socket.end();
      resolve(reply);
    });
    socket.on("error", (err) => fail(err.message, err));
    socket.on("close", () => fail("closed the connection without an ACK"));
  });
}
