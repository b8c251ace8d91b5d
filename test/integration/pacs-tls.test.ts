import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { it } from "node:test";
import { DelineateError } from "../../src/errors.js";
import { DicomWebClient } from "../../src/pacs/dicomweb.js";
import { pacsFetch } from "../../src/pacs/http.js";
import { freePort, startOrthanc, waitFor } from "../helpers/orthanc.js";
import { exec, tempDir } from "../helpers/tools.js";

/** A throw-away CA and a server certificate for 127.0.0.1 signed by it (openssl). */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => exec("openssl", args);
  await ssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=Delineate test CA",
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.pem"),
  );
  await ssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    f("server.key"),
    "-out",
    f("server.csr"),
  );
  writeFileSync(f("san.ext"), "subjectAltName=IP:127.0.0.1\n");
  await ssl(
    "x509",
    "-req",
    "-in",
    f("server.csr"),
    "-CA",
    f("ca.pem"),
    "-CAkey",
    f("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    f("san.ext"),
    "-out",
    f("server.crt"),
  );
  return { ca: f("ca.pem"), cert: f("server.crt"), key: f("server.key") };
}

/**
 * The PACS behind TLS. Debian's Orthanc 1.10 segfaults on its first HTTPS connection when SslEnabled is on, so
 * TLS is terminated by nginx in front of it, as many sites deploy Orthanc anyway.
 */
it("talks to a PACS over https when given its CA, and refuses it otherwise", { timeout: 120_000 }, async () => {
  const dir = tempDir("tls-");
  const { ca, cert, key } = await makeCertificates(dir);
  const orthanc = await startOrthanc();
  const port = await freePort();
  mkdirSync(path.join(dir, "nginx"));
  const conf = path.join(dir, "nginx.conf");
  writeFileSync(
    conf,
    `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/nginx-error.log;
events {}
http {
  access_log off;
  client_body_temp_path ${dir}/nginx/body; proxy_temp_path ${dir}/nginx/proxy; fastcgi_temp_path ${dir}/nginx/fcgi;
  uwsgi_temp_path ${dir}/nginx/uwsgi; scgi_temp_path ${dir}/nginx/scgi;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${cert}; ssl_certificate_key ${key};
    client_max_body_size 0;
    location / { proxy_pass ${orthanc.url}; }
  }
}
`,
  );
  const nginx = spawn("nginx", ["-c", conf, "-p", dir], { stdio: "ignore" });
  try {
    const url = `https://127.0.0.1:${port}`;
    const conn = {
      url,
      dicomWebRoot: "/dicom-web",
      username: orthanc.username,
      password: orthanc.password,
      timeoutMs: 30_000,
    };
    await waitFor(
      "nginx",
      async () => ((await pacsFetch({ ...conn, caFile: ca })(`${url}/system`, {})).ok ? true : undefined),
      30_000,
    );
    assert.deepEqual(
      await new DicomWebClient({ ...conn, caFile: ca }).searchStudies({}),
      [],
      "QIDO-RS over https with the site's CA",
    );
    await assert.rejects(
      new DicomWebClient(conn).searchStudies({}),
      (e: unknown) =>
        e instanceof DelineateError && e.code === "DLN_ERR_PACS_UNAVAILABLE" && /PACS unreachable/.test(e.message),
      "without the CA the certificate is not trusted",
    );
    assert.throws(
      () => new DicomWebClient({ ...conn, caFile: path.join(dir, "absent.pem") }),
      /cannot read the PACS CA file .*absent\.pem/,
    );
  } finally {
    nginx.kill("SIGTERM");
    await orthanc.stop();
  }
});
