import { hostname } from "node:os";
import path from "node:path";
import type { Config } from "../../config/schema.js";
import { str } from "../../dicom/dataset.js";
import type { Job, JobResult } from "../../jobs/job.js";
import type { Logger } from "../../log.js";
import type { ModelLabel } from "../../models/manifest.js";
import type { DicomWebClient } from "../../pacs/dicomweb.js";
import type { StudySource } from "../../pacs/source.js";
import type { RuleDecision } from "../../route/routeStudy.js";
import type { RoutingRule } from "../../route/rules.js";
import type { VolumeOptions } from "../../volume/seriesToVolume.js";
import { AuditLog, auditedRun } from "./audit.js";
import type { DashboardStore } from "./jobReader.js";
import { type IngestInfo, type ModelInfo, OverviewSource } from "./overview.js";
import { Previewer } from "./preview.js";
import { dashboardRouter } from "./router.js";

export interface DashboardWiring {
  config: Readonly<Config>;
  store: DashboardStore;
  rules: readonly RoutingRule[];
  models: () => ModelInfo[];
  /** the source PACS: its reachability on the overview, patient identifiers when the configuration allows */
  pacs: DicomWebClient;
  source: (job: Job) => StudySource;
  destination: (name: string) => DicomWebClient | undefined;
  labels: (modelId: string) => readonly ModelLabel[] | undefined;
  volume: VolumeOptions;
  dryRun: (studyInstanceUID: string) => Promise<RuleDecision[]>;
  onRetry: () => void;
  log: Logger;
}

/** The ingest paths the configuration has on, grouped by where their studies are read from. */
function ingestInfo(ingest: Config["ingest"]): IngestInfo[] {
  const fromPacs = [
    ...(ingest.changeFeed ? ["Orthanc change feed"] : []),
    ...(ingest.webhook ? ["webhook"] : []),
    ...(ingest.qido.enabled ? ["QIDO-RS polling"] : []),
  ];
  return [
    ...(fromPacs.length ? [{ source: "pacs" as const, via: fromPacs }] : []),
    ...(ingest.stow.enabled ? [{ source: "pushed" as const, via: ["STOW-RS"] }] : []),
  ];
}

/** The dashboard's parts, wired from the node's: the router to mount at /, the audit trail the API writes to. */
export function createDashboard(w: DashboardWiring): {
  router: ReturnType<typeof dashboardRouter>;
  audit: AuditLog;
  /** wraps the node's job runner so every attempt lands in the audit trail */
  audited: <R extends JobResult>(run: (job: Job) => Promise<R>) => (job: Job) => Promise<R>;
} {
  const { config } = w;
  const audit = new AuditLog(config.dataDir);
  const overview = new OverviewSource({
    store: w.store,
    models: w.models,
    ingest: ingestInfo(config.ingest),
    dataDir: config.dataDir,
    // the cheapest DICOMweb question: one study, whichever
    checkPacs: async () => void (await w.pacs.searchStudies({ limit: "1" })),
    noStudyAlertMs: config.ui.noStudyAlertMinutes * 60_000,
  });
  const previewer = new Previewer({
    source: w.source,
    destination: w.destination,
    sopClassUIDs: (rule) => w.rules.find((r) => r.name === rule)?.match.sopClassUIDs,
    labels: w.labels,
    volume: w.volume,
    cacheDir: path.join(config.dataDir, "previews"),
    keySlices: config.outputs.sc.keySlices,
    disclaimer: config.outputs.disclaimer,
  });
  const router = dashboardRouter({
    store: w.store,
    apiToken: config.http.apiToken,
    audit,
    onRetry: w.onRetry,
    overview,
    previewer,
    rules: w.rules,
    dryRun: w.dryRun,
    patient: async (job) => {
      if (job.source !== "pacs") return undefined;
      const [study] = await w.pacs.searchStudies({ StudyInstanceUID: job.studyInstanceUID });
      return study && { name: str(study, "PatientName"), id: str(study, "PatientID") };
    },
    ui: config.ui,
    log: w.log,
  });
  const worker = `worker ${hostname()}/${process.pid}`;
  return { router, audit, audited: (run) => auditedRun(audit, worker, run) };
}
