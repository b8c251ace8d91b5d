import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { it } from "node:test";
import { seededRandom } from "../../harness/syntheticCt.js";
import { writePart10 } from "../../src/dicom/dataset.js";
import { SopClass } from "../../src/dicom/uids.js";
import { buildMultipart } from "../../src/pacs/multipart.js";
import { pushedFixture } from "../helpers/pushed.js";
import { stowApp } from "../helpers/stowApp.js";

/** A deeply nested instance: sequences `depth` items deep. */
function nested(depth: number): Uint8Array {
  let item: Record<string, unknown> = { CodeValue: "1", CodingSchemeDesignator: "DCM", CodeMeaning: "x" };
  for (let d = 0; d < depth; d++) item = { ConceptNameCodeSequence: [item] };
  return writePart10({
    SOPClassUID: SopClass.CTImageStorage,
    SOPInstanceUID: `1.2.3.4.${depth}`,
    StudyInstanceUID: "1.2.3.9",
    SeriesInstanceUID: "1.2.3.9.1",
    ContentSequence: [item],
  });
}

const SEED = Number(process.env.DELINEATE_FUZZ_SEED ?? 20261129);
const CASES = 300;

it(`STOW-RS takes ${CASES} mutated instances (seed ${SEED}) without failing, stalling or growing`, {
  timeout: 120_000,
}, async () => {
  const random = seededRandom(SEED);
  const int = (n: number) => Math.floor(random() * n);
  const { app, dispose } = await stowApp();
  const { files } = pushedFixture(4);
  const server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Each case's upload stalls halfway until /healthz has answered: that every case's /healthz answered before the
  // case's own answer came is the node staying responsive, shown by order rather than by a latency bound.
  const healthzBeforeAnswer: number[] = [];
  const stalledHalfway = (bytes: Uint8Array, k: number) => {
    const half = bytes.subarray(0, bytes.length >> 1);
    let step = 0;
    return new ReadableStream({
      async pull(c) {
        if (step === 0) c.enqueue(half);
        else if (step === 1) {
          const health = await fetch(`${base}/healthz`);
          await health.text();
          if (health.status === 200) healthzBeforeAnswer.push(k);
          c.enqueue(bytes.subarray(half.length));
        } else c.close();
        step++;
      },
    });
  };
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const mutate = (k: number): Uint8Array => {
    const src = files[k % files.length]!;
    const out = new Uint8Array(src);
    switch (k % 6) {
      case 0: // byte flips past the preamble
        for (let n = 1 + int(20); n > 0; n--) out[132 + int(out.length - 132)] = int(256);
        return out;
      case 1: // truncated
        return out.subarray(0, int(out.length));
      case 2: {
        // a length field past the end
        const at = 132 + int(Math.min(2000, out.length - 140));
        new DataView(out.buffer).setUint32(at, 0xfffffff0 - int(1000), true);
        return out;
      }
      case 3: {
        // a wrong VR: some "UI" made another VR
        const vrs = ["SQ", "OB", "UN", "FD", "XX"];
        const text = Buffer.from(out);
        let at = text.indexOf("UI", 132 + int(1000));
        if (at === -1) at = 140;
        text.write(vrs[int(vrs.length)]!, at, "latin1");
        return new Uint8Array(text);
      }
      case 4: // deep nesting
        return nested(50 + int(400));
      default: {
        // pixel data of the wrong size: the pixels cut, their declared length kept
        return out.subarray(0, out.length - 1 - int(200));
      }
    }
  };
  const statuses = new Map<number, number>();
  let cases = 0;
  for (let k = 0; k < CASES; k++) {
    const res = await fetch(`${base}/dicom-web/studies`, {
      method: "POST",
      headers: {
        Authorization: "Bearer t0ken",
        "Content-Type": 'multipart/related; type="application/dicom"; boundary=fz',
      },
      body: stalledHalfway(buildMultipart([mutate(k)], "fz"), k),
      duplex: "half",
    } as RequestInit);
    const text = await res.text();
    assert.equal(healthzBeforeAnswer.at(-1), k, `case ${k}: /healthz answered while its upload was stalled`);
    cases++;
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    assert.ok([200, 202, 409].includes(res.status), `case ${k}: ${res.status} ${text.slice(0, 200)}`);
    const body = JSON.parse(text) as Record<string, { Value: Record<string, { Value: unknown[] }>[] }>;
    for (const f of body["00081198"]?.Value ?? [])
      assert.ok(f["00081197"]?.Value[0], `case ${k}: a refusal with a reason`);
    if (performance.now() - t0 > 90_000) break; // bounded in time as well as count
  }
  // a good study afterwards is kept whole
  const good = await fetch(`${base}/dicom-web/studies`, {
    method: "POST",
    headers: {
      Authorization: "Bearer t0ken",
      "Content-Type": 'multipart/related; type="application/dicom"; boundary=fz',
    },
    body: new Blob([buildMultipart(pushedFixture(3).files, "fz") as Uint8Array<ArrayBuffer>]),
  });
  server.close();
  assert.equal(good.status, 200);
  assert.equal(healthzBeforeAnswer.length, cases, "every case's /healthz answered before the case's own answer");
  const grownMiB = (process.memoryUsage().rss - rss0) / 2 ** 20;
  assert.ok(grownMiB < 300, `RSS grew ${grownMiB.toFixed(0)} MiB`);
  assert.ok((statuses.get(409) ?? 0) > 0 && (statuses.get(200) ?? 0) > 0, JSON.stringify([...statuses]));
  await dispose();
});
