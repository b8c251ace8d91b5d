import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";

/** What a rule does to a request it matches: answer a status itself, or pass it on and cut the answer's body. */
export type Fault = { status: number } | { cutAfterBytes: number };

export interface FaultRule {
  method: string;
  /** matched against the request's path and query */
  path: RegExp;
  fault: Fault;
  /** how many matching requests it spoils before it lets them through */
  times: number;
  /** matching requests so far, spoilt or not */
  seen: number;
  /** requests spoilt so far; a cut counts only when the upstream body was longer than the cut */
  spoilt: number;
}

export interface FaultProxy {
  url: string;
  add(rule: Pick<FaultRule, "method" | "path" | "fault" | "times">): FaultRule;
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of a real PACS that spoils chosen requests the way networks and busy servers do: a 429 or
 * a 400 instead of the answer, or the real answer's body cut off after some bytes (the connection then closed).
 * Everything else passes through untouched.
 */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const rules: FaultRule[] = [];
  const server = createServer((req, res) => {
    const rule = rules.find((r) => r.method === req.method && r.path.test(req.url ?? ""));
    if (rule) rule.seen++;
    const fault = rule && rule.spoilt < rule.times ? rule.fault : undefined;
    if (fault && "status" in fault) {
      rule!.spoilt++;
      req.resume();
      res.writeHead(fault.status, { "Content-Type": "text/plain" }).end(`fault proxy: ${fault.status}`);
      return;
    }
    const up = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (!fault) {
          upRes.pipe(res);
          return;
        }
        let sent = 0;
        upRes.on("data", (chunk: Buffer) => {
          if (sent >= fault.cutAfterBytes) return;
          const keep = chunk.subarray(0, fault.cutAfterBytes - sent);
          sent += keep.length;
          res.write(keep);
          if (sent < fault.cutAfterBytes) return;
          // the cut: what was written goes out, then the connection closes mid-body
          rule!.spoilt++;
          res.write("", () => res.socket?.destroy());
          upRes.destroy();
        });
        upRes.on("end", () => res.end()); // shorter than the cut: passed through whole
      },
    );
    up.on("error", () => res.socket?.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    add(r) {
      const rule = { ...r, seen: 0, spoilt: 0 };
      rules.push(rule);
      return rule;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
