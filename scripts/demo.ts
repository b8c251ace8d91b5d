/**
 * `npm run demo`: a local Orthanc (auth on, loopback), a sample CT sent to it by C-STORE, `delineate serve`
 * from config/default.json noticing it and writing a DICOM-SEG back, and where to look. With ../shared/data: an
 * OpenKBP head-and-neck patient and the hn-oar model, each organ scored against the clinical contours; without it,
 * the real abdominal CT or, with no data at all, a generated phantom, and ct-body. Orthanc keeps running afterwards
 * so the result can be browsed; the script prints how to stop it.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { prepareAbdomenStudy } from "../harness/data.js";
import { startOrthanc, waitFor } from "../harness/orthanc.js";
import { dciodvfy, exec, ROOT, sharedData, storescu } from "../harness/tools.js";
import { parsePart10, str } from "../src/dicom/dataset.js";
import { writePhantomSeries } from "../src/fixtures/phantom.js";
import type { Job } from "../src/jobs/job.js";
import { DicomWebClient } from "../src/pacs/dicomweb.js";

const DEMO = path.join(ROOT, "var", "demo");
const HTTP_PORT = Number(process.env.DEMO_ORTHANC_HTTP_PORT ?? 8142);
const DICOM_PORT = Number(process.env.DEMO_ORTHANC_DICOM_PORT ?? 4342);
const NODE_PORT = Number(process.env.DEMO_NODE_PORT ?? 8190);
const say = (s: string) => process.stdout.write(`${s}\n`);
/** the OpenKBP validation patient the demo sends when ../shared/data holds the data set */
const OPENKBP_PATIENT = process.env.DEMO_OPENKBP_PATIENT ?? "pt_201";

async function main(): Promise<void> {
  const oldPid = path.join(DEMO, "orthanc", "orthanc.pid");
  if (existsSync(oldPid)) {
    try {
      process.kill(Number(readFileSync(oldPid, "utf8")), "SIGTERM");
      say("stopped the Orthanc of a previous demo run");
      await new Promise((r) => setTimeout(r, 2000));
    } catch {
      // already gone
    }
  }
  rmSync(DEMO, { recursive: true, force: true });
  mkdirSync(DEMO, { recursive: true });

  say(`1/5 starting Orthanc on http://127.0.0.1:${HTTP_PORT} (DICOM port ${DICOM_PORT}, user demo / password demo)`);
  const orthanc = await startOrthanc({
    dir: path.join(DEMO, "orthanc"),
    httpPort: HTTP_PORT,
    dicomPort: DICOM_PORT,
    username: "demo",
    password: "demo",
    detached: true,
  });

  const abdomen = sharedData("totalseg-ct-abdomen-j2k/dicom");
  const openkbp = sharedData(`openkbp-hn-oar/validation/${OPENKBP_PATIENT}`);
  let study: string;
  let model = "ct-body";
  if (!openkbp.skip) {
    say(
      `2/5 sending OpenKBP validation patient ${OPENKBP_PATIENT} (head and neck, 128 slices) from ../shared/data with storescu, for the hn-oar model`,
    );
    study = await openkbpSeries(openkbp.path, path.join(DEMO, "sample"));
    await storescu(DICOM_PORT, orthanc.aet, path.join(DEMO, "sample"));
    model = "hn-oar";
  } else if (!abdomen.skip) {
    say(
      "2/5 sending a real abdominal CT (20 slices of 512×512) from ../shared/data with storescu, as a modality would",
    );
    const s = await prepareAbdomenStudy(abdomen.path, path.join(DEMO, "sample"));
    await storescu(DICOM_PORT, orthanc.aet, s.dir);
    study = s.studyInstanceUID;
  } else {
    say("2/5 ../shared/data is absent: sending a generated thorax phantom (48 slices) with storescu");
    const s = writePhantomSeries(path.join(DEMO, "sample"), {
      size: 256,
      slices: 48,
      pixelSpacing: 1.5,
      sliceSpacing: 3,
      patientName: "Phantom^Demo",
      patientID: "DEMO-0001",
    });
    await storescu(DICOM_PORT, orthanc.aet, path.join(DEMO, "sample"));
    study = s.studyInstanceUID;
  }

  say(
    `3/5 starting delineate serve (config/default.json; PACS and data folder from the environment), API on http://127.0.0.1:${NODE_PORT}`,
  );
  const token = "demo-token";
  const node = spawn(process.execPath, [path.join(ROOT, "dist/src/cli/main.js"), "serve"], {
    env: {
      ...process.env,
      DELINEATE_PACS_URL: orthanc.url,
      DELINEATE_PACS_USERNAME: "demo",
      DELINEATE_PACS_PASSWORD: "demo",
      DELINEATE_DATA_DIR: path.join(DEMO, "node"),
      DELINEATE_HTTP_PORT: String(NODE_PORT),
      DELINEATE_API_TOKEN: token,
      DELINEATE_MODEL_ID: model,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logFile = path.join(DEMO, "node.log");
  const logLines: string[] = [];
  node.stdout.on("data", (b: Buffer) => logLines.push(b.toString()));
  node.stderr.on("data", (b: Buffer) => logLines.push(b.toString()));
  try {
    say("4/5 waiting for the study to become stable in Orthanc, then for the job to finish");
    const api = (p: string) =>
      fetch(`http://127.0.0.1:${NODE_PORT}${p}`, { headers: { Authorization: `Bearer ${token}` } });
    const ended = (j: Job) => j.state === "done" || j.state === "failed" || j.state === "skipped" || j.state === "dead";
    // The route job picks the series; the segment job it makes runs the model on it.
    const job = await waitFor(
      "the job",
      async () => {
        if (node.exitCode !== null) throw new Error(`the node exited; see ${logFile}`);
        const jobs = (await (await api(`/api/jobs?study=${study}`)).json()) as Job[];
        const routeJob = jobs.find((j) => j.kind === "route");
        if (routeJob && ended(routeJob) && routeJob.state !== "done") return routeJob;
        return jobs.find((j) => j.kind === "segment" && ended(j));
      },
      900_000,
      500,
    );
    if (job.state !== "done")
      throw new Error(`the ${job.kind} job ended ${job.state}: ${job.error?.code} ${job.error?.message}`);

    const pacs = new DicomWebClient({
      url: orthanc.url,
      dicomWebRoot: "/dicom-web",
      username: "demo",
      password: "demo",
      timeoutMs: 60_000,
    });
    // each result the node stored, fetched back and checked by dciodvfy
    const results = [];
    for (const s of (await pacs.searchSeries(study)).filter((x) =>
      ["SEG", "SR", "RTSTRUCT"].includes(str(x, "Modality")),
    )) {
      const modality = str(s, "Modality"),
        series = str(s, "SeriesInstanceUID");
      const [file] = await pacs.retrieveSeries(study, series);
      const copy = path.join(DEMO, `${modality.toLowerCase()}.dcm`);
      writeFileSync(copy, file!);
      const verdict = await dciodvfy(copy);
      results.push({
        modality,
        series,
        number: str(s, "SeriesNumber"),
        description: str(s, "SeriesDescription"),
        copy,
        verdict,
      });
    }
    const orthancStudy = (await orthanc.rest("/studies?expand")).find(
      (s: { MainDicomTags: { StudyInstanceUID: string } }) => s.MainDicomTags.StudyInstanceUID === study,
    );

    say(`5/5 done: ${results.map((r) => r.modality).join(", ")} are in the same study in Orthanc\n`);
    say(`  study            ${study}`);
    say(
      `  Orthanc Explorer http://127.0.0.1:${HTTP_PORT}/app/explorer.html#study?uuid=${orthancStudy?.ID ?? ""}   (demo / demo)`,
    );
    for (const r of results) {
      say(`  ${r.modality.padEnd(16)} series ${r.series} (number ${r.number}, "${r.description}")`);
      say(`  ${"".padEnd(16)} ${orthanc.url}/dicom-web/studies/${study}/series/${r.series}`);
      say(
        `  ${"".padEnd(16)} a copy: ${r.copy}  (dciodvfy: ${r.verdict.errors.length} errors, ${r.verdict.warnings.length} warnings)`,
      );
      const seg = results.find((x) => x.modality === "SEG");
      if (r.modality === "RTSTRUCT" && model === "hn-oar" && seg) await sayClinicalDice(seg.copy, openkbp.path);
    }
    const segment = job.kind === "segment" ? job.segment : undefined;
    say(
      `  job              ${JSON.stringify({ id: job.id, state: job.state, series: segment?.seriesInstanceUID, model: segment?.modelId, executionProvider: segment?.executionProvider, secondsPerStage: job.timings })}`,
    );
    say(`  node log         ${logFile}`);
    say(
      `\nOrthanc keeps running for you to look; stop it with: kill $(cat ${path.join(DEMO, "orthanc", "orthanc.pid")})`,
    );
  } finally {
    node.kill("SIGTERM");
    await new Promise((r) => node.once("exit", r));
    writeFileSync(logFile, logLines.join(""));
  }
}

/** The OpenKBP patient as a CT series (training/openkbp_to_dicom.py): returns its Study Instance UID. */
async function openkbpSeries(patient: string, out: string): Promise<string> {
  await exec("/usr/bin/python3", [
    path.join(ROOT, "training", "openkbp_to_dicom.py"),
    "--patient",
    patient,
    "--out",
    out,
  ]);
  const first = readdirSync(out).sort()[0]!;
  return str(parsePart10(new Uint8Array(readFileSync(path.join(out, first)))).dataset, "StudyInstanceUID");
}

/**
 * Per organ, the SEG's label map against the patient's clinical contours, as training/evaluate_hn_oar.py scores the
 * DICOM path (only organs the plan contoured, suspect slices left out): Dice, HD95 and mean surface distance.
 */
async function sayClinicalDice(segFile: string, patient: string): Promise<void> {
  const code = `
import json, os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "training"))
import evaluate_hn_oar as E
print(json.dumps(E.evaluate_patient(None, sys.argv[3], None, seg=sys.argv[2])))`;
  try {
    const { stdout } = await exec("/usr/bin/python3", ["-c", code, ROOT, segFile, patient]);
    const r = JSON.parse(stdout) as {
      organs: Record<string, { dice: number; hd95: number | null; msd: number | null; predicted: number }>;
      externalDice: number;
    };
    say(`  ${"".padEnd(16)} against the clinical contours (contoured organs, suspect slices left out):`);
    for (const [organ, m] of Object.entries(r.organs)) {
      const mm = m.hd95 === null ? "not found by the model" : `HD95 ${m.hd95} mm, MSD ${m.msd} mm`;
      say(`  ${"".padEnd(18)}${organ.padEnd(14)} Dice ${m.dice.toFixed(3)}  ${mm}`);
    }
    say(`  ${"".padEnd(18)}${"External".padEnd(14)} Dice ${r.externalDice.toFixed(3)} (vs the classical body outline)`);
  } catch (err) {
    // the scores are extra information: the demo's results stand without them
    say(`  ${"".padEnd(16)} (no Dice against the clinical contours: ${(err as Error).message.split("\n")[0]})`);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`demo failed: ${err.message}\n`);
  process.exit(1);
});
