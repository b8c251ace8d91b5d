/**
 * `npm run bench:stow`: one instance of 16, 64, 256 and 512 MB pushed to the node's STOW-RS (a real `delineate serve`
 * process, chunked upload over a socket): the seconds each push takes, the node's peak resident set after it, and
 * the worst `/healthz` latency while it went on (polled every 50 ms: an event loop that stalls shows here). Writes
 * bench/STOW.md and the "stow" entry of bench/results.json.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { startNodeProcess } from "../harness/nodeProcess.js";
import { startOrthanc } from "../harness/orthanc.js";
import { tempDir } from "../harness/tempDir.js";
import { ROOT } from "../harness/tools.js";
import { writePhantomSeries } from "../src/fixtures/phantom.js";
import { buildMultipart } from "../src/pacs/multipart.js";
import { machineFacts, mergeResults, runBench } from "./record.js";

const SIZES_MB = (process.env.BENCH_STOW_SIZES ?? "16,64,256,512").split(",").map(Number);
const MiB = 2 ** 20;

/** A phantom CT instance whose Pixel Data is replaced by `bytes` bytes (a big frame's worth, as a header-only read sees it). */
function instanceOf(template: Uint8Array, bytes: number): Uint8Array {
  // the template's pixel data is its last element: cut it and append an OW element of the size wanted
  const tag = Buffer.from([0xe0, 0x7f, 0x10, 0x00]);
  const at = Buffer.from(template).lastIndexOf(tag);
  const header = Buffer.alloc(12);
  tag.copy(header, 0);
  header.write("OW", 4, "latin1");
  header.writeUInt32LE(bytes, 8);
  const out = new Uint8Array(at + 12 + bytes);
  out.set(template.subarray(0, at));
  out.set(header, at);
  for (let i = at + 12; i < out.length; i += 4096) out[i] = i & 0xff;
  return out;
}

function peakRssMiB(pid: number | undefined): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Math.round(Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024);
}

async function main(): Promise<void> {
  const work = tempDir("bench-stow-");
  const orthanc = await startOrthanc();
  const node = await startNodeProcess(orthanc, path.join(work, "data"), {
    logFile: path.join(work, "node.log"),
    ingest: { changeFeed: false, webhook: false, stow: { enabled: true, quietSeconds: 3600, maxBodyMiB: 1024 } },
  });
  const rows: { mb: number; seconds: number; status: number; peakRssMiB: number; worstHealthzMs: number }[] = [];
  try {
    const s = writePhantomSeries(path.join(work, "template"), {
      size: 16,
      slices: SIZES_MB.length, // one instance (its own SOP Instance UID) per size
      pixelSpacing: 1,
      sliceSpacing: 1,
      patientName: "Bench^Stow",
      patientID: "BENCH-STOW",
    });
    for (const [n, mb] of SIZES_MB.entries()) {
      const template = new Uint8Array(readFileSync(s.files[n]!));
      let body: Uint8Array | undefined = buildMultipart([instanceOf(template, mb * MiB)], "bench");
      let worst = 0;
      let polling = true;
      const poll = (async () => {
        while (polling) {
          const t0 = performance.now();
          await (await fetch(`http://127.0.0.1:${node.port}/healthz`)).text();
          worst = Math.max(worst, performance.now() - t0);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const t0 = performance.now();
      const whole = body;
      const res = await fetch(`http://127.0.0.1:${node.port}/dicom-web/studies`, {
        method: "POST",
        headers: {
          "Content-Type": 'multipart/related; type="application/dicom"; boundary=bench',
          Authorization: `Bearer ${node.token}`,
        },
        body: new ReadableStream({
          start(c) {
            for (let o = 0; o < whole.length; o += MiB) c.enqueue(whole.subarray(o, o + MiB));
            c.close();
          },
        }),
        duplex: "half",
      } as RequestInit);
      await res.text();
      const seconds = (performance.now() - t0) / 1000;
      polling = false;
      await poll;
      body = undefined;
      rows.push({
        mb,
        seconds,
        status: res.status,
        peakRssMiB: peakRssMiB(node.pid()),
        worstHealthzMs: Math.round(worst),
      });
      process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
    }
  } finally {
    await node.stop();
    await orthanc.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const machine = machineFacts();
  mergeResults({ stow: { machine, rows } });
  const md = [
    "# STOW-RS: one large instance",
    "",
    "Written by `npm run bench:stow` (bench/stow.ts); do not edit by hand. One instance of each size pushed to a",
    "`delineate serve` process by STOW-RS in 1 MiB chunks, the sizes in turn; `/healthz` polled every 50 ms meanwhile.",
    "Peak resident set is the node process's high-water mark after the push (it only grows).",
    "",
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ${machine.os}; Node ${machine.node}; ${machine.date}.`,
    "",
    "| instance | status | seconds | peak RSS (MiB) | worst /healthz (ms) |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map(
      (r) => `| ${r.mb} MB | ${r.status} | ${r.seconds.toFixed(2)} | ${r.peakRssMiB} | ${r.worstHealthzMs} |`,
    ),
    "",
  ];
  writeFileSync(path.join(ROOT, "bench", "STOW.md"), md.join("\n"));
  process.stdout.write(md.join("\n"));
}

runBench(main);
