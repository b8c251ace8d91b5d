import assert from "node:assert/strict";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type NaturalDataset, str } from "../../src/dicom/dataset.js";
import { writePhantomSeries } from "../../src/fixtures/phantom.js";
import { DicomWebClient } from "../../src/pacs/dicomweb.js";
import type { RuleDecision } from "../../src/route/routeStudy.js";
import { type NodeProcess, startNodeProcess } from "../helpers/nodeProcess.js";
import { startOrthanc, type TestOrthanc, waitFor } from "../helpers/orthanc.js";
import { stopTestPostgres } from "../helpers/store.js";
import { ROOT, storescu, tempDir } from "../helpers/tools.js";

/**
 * Routing rules with several models and two destinations, against two real Orthancs: the source PACS and a
 * "research" PACS that only receives results.
 */
describe("routing rules: several models, outputs to another PACS, series arriving later", {
  concurrency: false,
}, () => {
  let source: TestOrthanc, research: TestOrthanc;
  let node: NodeProcess;
  let work: string;
  let study: string, frame: string;
  const series: Record<string, string> = {};
  const client = (o: TestOrthanc) =>
    new DicomWebClient({
      url: o.url,
      dicomWebRoot: "/dicom-web",
      username: o.username,
      password: o.password,
      timeoutMs: 30_000,
    });
  /** each SEG in the study: the series it segments and the model that made it */
  const segsIn = async (o: TestOrthanc) => {
    const pacs = client(o);
    const segs = (await pacs.searchSeries(study).catch(() => [])).filter((s) => str(s, "Modality") === "SEG");
    return (
      await Promise.all(
        segs.map(async (s) => {
          const [meta] = await pacs.seriesMetadata(study, str(s, "SeriesInstanceUID"));
          const first = (v: unknown) => (Array.isArray(v) ? v[0] : v) as NaturalDataset;
          return `${first(meta!.ReferencedSeriesSequence).SeriesInstanceUID === series.thorax ? "thorax" : first(meta!.ReferencedSeriesSequence).SeriesInstanceUID === series.abdomen ? "abdomen" : "late"}:${first(meta!.SegmentSequence).SegmentAlgorithmName}`;
        }),
      )
    ).sort();
  };
  const send = (name: string, description: string, slices: number) => {
    const s = writePhantomSeries(path.join(work, name), {
      size: 64,
      slices,
      pixelSpacing: 6,
      sliceSpacing: 4,
      patientName: "Route^Rita",
      patientID: "ROUTE-1",
      ...(study ? { studyInstanceUID: study, frameOfReferenceUID: frame } : {}),
      seriesDescription: description,
      seriesNumber: Object.keys(series).length + 1,
    });
    study = s.studyInstanceUID;
    frame = s.frameOfReferenceUID;
    series[name] = s.seriesInstanceUID;
    return storescu(source.dicomPort, source.aet, path.join(work, name));
  };
  before(async () => {
    work = tempDir("routing-");
    [source, research] = await Promise.all([
      startOrthanc(),
      startOrthanc({ username: "research", password: "research-password-2" }),
    ]);
    // A second model package: the same network under another id, as a site would install two models.
    const models = path.join(work, "models");
    cpSync(path.join(ROOT, "models", "ct-body"), path.join(models, "ct-body"), { recursive: true });
    cpSync(path.join(ROOT, "models", "ct-body"), path.join(models, "ct-body-b"), { recursive: true });
    const manifest = JSON.parse(readFileSync(path.join(models, "ct-body-b", "model.json"), "utf8"));
    writeFileSync(
      path.join(models, "ct-body-b", "model.json"),
      JSON.stringify({ ...manifest, id: "ct-body-b", version: "1.1.0" }),
    );
    writeFileSync(path.join(work, "research-password"), "research-password-2\n");
    node = await startNodeProcess(source, path.join(work, "data"), {
      logFile: path.join(work, "node.log"),
      configure: (c) => {
        c.model.dir = models;
        c.destinations = {
          research: { url: research.url, username: "research", passwordFile: path.join(work, "research-password") },
        };
        c.routes = [
          {
            name: "thorax-to-pacs",
            match: { seriesDescription: { include: "thorax" }, minSlices: 8 },
            models: ["ct-body"],
            outputs: ["seg", "sr", "sc"],
          },
          {
            name: "chest-to-research",
            match: { bodyPartExamined: ["CHEST"], orientation: ["axial"] },
            models: ["ct-body", "ct-body-b"],
            outputs: ["seg"],
            destination: "research",
          },
          { name: "never", match: { manufacturer: "^no such maker$" }, models: ["ct-body"], outputs: ["seg"] },
        ];
      },
    });
  });

  after(async () => {
    await node?.stop();
    await Promise.all([source?.stop(), research?.stop()]);
    await stopTestPostgres();
  });

  it("applies every rule: each takes its series, runs each of its models, and stores into its destination", {
    timeout: 240_000,
  }, async () => {
    await send("thorax", "Phantom thorax", 10);
    await send("abdomen", "Phantom abdomen", 12);
    const jobs = await waitFor(
      "the study's jobs",
      async () => {
        const j = await node.settled(study);
        return j && j.length === 3 ? j : undefined;
      },
      180_000,
      250,
    );
    assert.deepEqual(
      jobs.map((j) => j.state),
      ["done", "done", "done"],
      JSON.stringify(jobs.map((j) => j.error)),
    );
    const made = jobs
      .map((j) =>
        j.kind === "segment"
          ? `${j.segment.rule}:${j.segment.seriesInstanceUID === series.thorax ? "thorax" : "abdomen"}:${j.segment.modelId}:${j.segment.destination}`
          : j.kind,
      )
      .sort();
    assert.deepEqual(made, [
      "chest-to-research:abdomen:ct-body-b:research",
      "chest-to-research:abdomen:ct-body:research",
      "thorax-to-pacs:thorax:ct-body:pacs",
    ]);
    assert.deepEqual(await segsIn(source), ["thorax:ct-body"], "the source PACS got the thorax rule's result only");
    // the thorax rule also asked for the SR: stored beside its SEG, its groups referencing that SEG
    const pacs = client(source);
    const srs = (await pacs.searchSeries(study)).filter((x) => str(x, "Modality") === "SR");
    assert.equal(srs.length, 1);
    const [srMeta] = await pacs.seriesMetadata(study, str(srs[0]!, "SeriesInstanceUID"));
    const [segSeries] = (await pacs.searchSeries(study)).filter((x) => str(x, "Modality") === "SEG");
    const [segMeta] = await pacs.seriesMetadata(study, str(segSeries!, "SeriesInstanceUID"));
    const evidence = JSON.stringify(srMeta!.CurrentRequestedProcedureEvidenceSequence);
    assert.ok(
      evidence.includes(str(segMeta!, "SOPInstanceUID")) && evidence.includes(series.thorax!),
      "the SR's evidence lists the SEG and the thorax series",
    );
    assert.equal(
      (await client(research).searchSeries(study)).filter((x) => str(x, "Modality") === "SR").length,
      0,
      "the research rule asked for SEG only",
    );
    // and the overlay, which Orthanc took through STOW-RS like the others
    const overlays = (await pacs.searchSeries(study)).filter((x) => str(x, "Modality") === "OT");
    assert.equal(overlays.length, 1);
    const [scMeta] = await pacs.seriesMetadata(study, str(overlays[0]!, "SeriesInstanceUID"));
    assert.equal(str(scMeta!, "SOPClassUID"), "1.2.840.10008.5.1.4.1.1.7.4");
    assert.deepEqual(
      await segsIn(research),
      ["abdomen:ct-body", "abdomen:ct-body-b"],
      "the research PACS got one SEG per model",
    );

    const [route] = await node.jobs(study, "route");
    assert.ok(route?.kind === "route" && route.routing);
    const never = route.routing.find((d) => d.rule === "never")!;
    assert.equal(never.seriesInstanceUID, null);
    assert.match(never.reason!, /manufacturer "Delineate phantom" does not match \/\^no such maker\$\/i/);
  });

  it("says in a dry run which series each rule would take and why it passes over the others", async () => {
    const res = await node.api(`/api/route?study=${study}`);
    const { rules } = (await res.json()) as { rules: RuleDecision[] };
    const byRule = Object.fromEntries(rules.map((r) => [r.rule, r]));
    assert.equal(byRule["thorax-to-pacs"]?.seriesInstanceUID, series.thorax);
    // the SEG the node stored is a series of the study too
    assert.deepEqual(byRule["thorax-to-pacs"]?.skipped.map((s) => s.reason).sort(), [
      "modality OT",
      "modality SEG",
      "modality SR",
      'series description "Phantom abdomen" does not match /thorax/i',
    ]);
    assert.equal(byRule["chest-to-research"]?.seriesInstanceUID, series.abdomen);
    assert.deepEqual(byRule["chest-to-research"]?.skipped.map((s) => s.reason).sort(), [
      "fewer images (10) than another matching series",
      "modality OT",
      "modality SEG",
      "modality SR",
    ]);
    assert.equal(byRule.never?.seriesInstanceUID, null);
  });

  it("routes a study again when a series arrives later: the new series gets its results, the earlier ones are not repeated", {
    timeout: 240_000,
  }, async () => {
    await send("late", "Phantom thorax, late", 14);
    const jobs = await waitFor(
      "the late series' jobs",
      async () => {
        const j = await node.settled(study);
        return j && j.length === 6 ? j : undefined;
      },
      180_000,
      250,
    );
    assert.ok(
      jobs.every((j) => j.state === "done"),
      JSON.stringify(jobs.map((j) => j.error)),
    );
    assert.deepEqual(await segsIn(source), ["late:ct-body", "thorax:ct-body"]);
    assert.equal(
      (await client(source).searchSeries(study)).filter((x) => str(x, "Modality") === "SR").length,
      2,
      "one SR per thorax-rule job",
    );
    assert.deepEqual(await segsIn(research), [
      "abdomen:ct-body",
      "abdomen:ct-body-b",
      "late:ct-body",
      "late:ct-body-b",
    ]);
    assert.doesNotMatch(
      readFileSync(node.logFile, "utf8"),
      /Route\^Rita|ROUTE-1|research-password-2/,
      "no patient identifiers or destination password in the log",
    );
  });
});
