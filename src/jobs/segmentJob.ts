import { type ParsedDicom, parsePart10Received, withSopClass } from "../dicom/dataset.js";
import { DelineateError } from "../errors.js";
import type { Logger } from "../log.js";
import type { ModelPackage } from "../models/loadModel.js";
import { resultFacts } from "../notify/facts.js";
import type { OutputSettings } from "../outputs/encodeOutputs.js";
import type { DicomWebClient } from "../pacs/dicomweb.js";
import type { StudySource } from "../pacs/source.js";
import { instanceUnsuitable } from "../route/selectSeries.js";
import type { VolumeOptions } from "../volume/seriesToVolume.js";
import type { LabelMap, Volume } from "../volume/volume.js";
import type { JobResult, SegmentJob, StageTimings } from "./job.js";
import { segmentSeries } from "./segmentSeries.js";

/** Everything one segment job needs, passed in: nothing here reads configuration or global state. */
export interface SegmentContext {
  /** where the study's images are read from: the PACS, or the pushed store */
  source: StudySource;
  /** where the results go, and where they are looked for before storing */
  destination: DicomWebClient;
  model: ModelPackage;
  /** the SOP classes the job's rule takes (the others in the series, a localizer say, are left out) */
  sopClassUIDs: readonly string[];
  /** how series become volumes (decoders for compressed instances pushed to the node, tolerances) */
  volume: VolumeOptions;
  /** runs the model on a volume (on the model's inference worker thread, in the node) */
  infer: (volume: Volume) => Promise<LabelMap>;
  executionProvider: string;
  newUid: () => string;
  outputs: OutputSettings;
  /** the node's Device Observer UID in SRs */
  deviceObserverUID: string;
  softwareVersion: string;
  log: Logger;
  /** true once a cancel was asked for through the API; checked before each stage (it may also throw: a lost lease) */
  cancelRequested: () => Promise<boolean>;
  /**
   * Set when notifiers are configured: the result then carries its facts (organ volumes) for the outbox, and a
   * job whose outputs are already stored (a retry after a crash) runs its stages again to measure them, storing nothing.
   */
  notify?: { disclaimer: string };
}

/**
 * The path of one series through one model: fetch → volume → inference → encode → store; the middle three through
 * segmentSeries, which the offline CLI shares (the two are the only callers of more than one stage). The outputs'
 * UIDs come from the job, and the destination is asked before storing, so a job retried after a crash never stores
 * a result twice.
 * @throws DelineateError from whichever stage failed.
 */
export async function runSegmentJob(
  job: SegmentJob,
  ctx: SegmentContext,
): Promise<Extract<JobResult, { kind: "segment" }>> {
  const { timed, timings } = stageTimer(job, ctx);
  const study = job.studyInstanceUID;
  const target = job.segment;
  const { manifest } = ctx.model;
  if (manifest.version !== target.modelVersion) {
    throw new DelineateError(
      "DLN_ERR_MODEL_INVALID",
      `job ${job.id} is for ${target.modelId} ${target.modelVersion}, but ${manifest.version} is installed; route the study again`,
      { modelId: target.modelId },
    );
  }
  const present = await outputsAlreadyStored(job, ctx);
  if (present.size === target.outputs.length && !ctx.notify) {
    ctx.log.info("results already in the destination; nothing to do", {
      jobId: job.id,
      studyInstanceUID: study,
      sopInstanceUIDs: [...present],
    });
    const executionProvider = target.executionProvider ?? ctx.executionProvider;
    return { kind: "segment", executionProvider, timings, alreadyStored: true, warnings: [] };
  }
  const seriesUID = target.seriesInstanceUID;
  const instances = await timed("fetch", () => fetchInstances(ctx, study, seriesUID));
  const { files, warnings, organs } = await segmentSeries(
    {
      instances,
      volume: ctx.volume,
      infer: ctx.infer,
      outputs: {
        manifest,
        kinds: target.outputs,
        uids: target.uids,
        settings: ctx.outputs,
        softwareVersion: ctx.softwareVersion,
        deviceObserverUID: ctx.deviceObserverUID,
        newUid: ctx.newUid,
      },
    },
    {
      stage: timed,
      volumeReady: (volume, warnings) => {
        for (const warning of warnings) ctx.log.warn(warning, { jobId: job.id });
        ctx.log.info("inference started", { jobId: job.id, seriesInstanceUID: seriesUID, dims: volume.dims });
      },
    },
  );
  const toStore = files.filter((f) => !present.has(f.sopInstanceUID));
  // One STOW-RS request for all of them: a PACS takes or refuses each, and a retry stores only what is missing.
  if (toStore.length)
    await timed("store", () =>
      ctx.destination.store(
        study,
        toStore.map((f) => f.bytes),
      ),
    );
  ctx.log.info("results stored", {
    jobId: job.id,
    studyInstanceUID: study,
    seriesInstanceUID: seriesUID,
    destination: target.destination,
    stored: toStore.map((f) => ({ kind: f.kind, sopInstanceUID: f.sopInstanceUID, bytes: f.bytes.byteLength })),
    timings,
  });
  return {
    kind: "segment",
    executionProvider: ctx.executionProvider,
    timings,
    alreadyStored: toStore.length === 0,
    warnings,
    ...(ctx.notify ? { facts: resultFacts(job, instances[0]!.dataset, organs, ctx.notify.disclaimer) } : {}),
  };
}

/** Times each stage into `timings`, and stops before a stage once a cancel was asked for. */
function stageTimer(job: SegmentJob, ctx: Pick<SegmentContext, "cancelRequested">) {
  const timings: StageTimings = {};
  const timed = async <T>(stage: keyof StageTimings, fn: () => Promise<T> | T): Promise<T> => {
    if (await ctx.cancelRequested()) {
      throw new DelineateError(
        "DLN_ERR_CANCELLED",
        `job ${job.id} was cancelled through the API before its ${stage} stage; nothing was stored`,
        { studyInstanceUID: job.studyInstanceUID },
      );
    }
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      timings[stage] = Math.round(performance.now() - t0) / 1000;
    }
  };
  return { timed, timings };
}

/** The job's outputs already in the destination (a retry after a crash while storing): they are not stored again. */
async function outputsAlreadyStored(job: SegmentJob, ctx: Pick<SegmentContext, "destination">): Promise<Set<string>> {
  const present = new Set<string>();
  for (const kind of job.segment.outputs) {
    const sop = job.segment.uids[kind]?.sopInstanceUID;
    if (sop && (await ctx.destination.instanceExists(job.studyInstanceUID, sop))) present.add(sop);
  }
  return present;
}

/** The series' instances, parsed, keeping those of the rule's SOP classes (a localizer in the series is left out). */
async function fetchInstances(
  ctx: Pick<SegmentContext, "source" | "sopClassUIDs">,
  study: string,
  seriesUID: string,
): Promise<ParsedDicom[]> {
  const parsed: ParsedDicom[] = [];
  let seen = 0;
  const take = (bytes: Uint8Array, i: number, of: string): void => {
    let p: ParsedDicom;
    try {
      p = parsePart10Received(bytes);
    } catch (err) {
      throw new DelineateError(
        "DLN_ERR_DICOM_PARSE",
        `series ${seriesUID}: instance #${i + 1}${of} is not readable DICOM: ${(err as Error).message}`,
        { seriesInstanceUID: seriesUID },
        { cause: err },
      );
    }
    if (!instanceUnsuitable(withSopClass(p), ctx.sopClassUIDs)) parsed.push(p);
    seen = i + 1;
  };
  // each instance parsed as soon as it has come, while the rest of the series is still on the way
  const files = await ctx.source.retrieveSeries(study, seriesUID, (bytes, i) => take(bytes, i, ""));
  // a source that hands the series over whole (what was pushed to the node) has not called back
  for (let i = seen; i < files.length; i++) take(files[i]!, i, ` of ${files.length}`);
  return parsed;
}
