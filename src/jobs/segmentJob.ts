import { parsePart10, str, writePart10, type ParsedDicom } from "../dicom/dataset.js";
import { DelineateError } from "../errors.js";
import type { Logger } from "../log.js";
import type { ModelPackage } from "../models/loadModel.js";
import { buildSegmentation } from "../outputs/segmentation.js";
import type { DicomWebClient } from "../pacs/dicomweb.js";
import type { StudySource } from "../pacs/source.js";
import { instanceUnsuitable } from "../route/selectSeries.js";
import { seriesToVolume } from "../volume/seriesToVolume.js";
import type { LabelMap, Volume } from "../volume/volume.js";
import type { Job, JobResult, StageTimings } from "./job.js";

/** Everything one segment job needs, passed in: nothing here reads configuration or global state. */
export interface SegmentContext {
  /** where the study's images are read from: the PACS, or the pushed store */
  source: StudySource;
  /** where the results go, and where they are looked for before storing */
  destination: DicomWebClient;
  model: ModelPackage;
  /** the SOP classes the job's rule takes (the others in the series, a localizer say, are left out) */
  sopClassUIDs: readonly string[];
  /** runs the model on a volume (on the model's inference worker thread, in the node) */
  infer: (volume: Volume) => Promise<LabelMap>;
  executionProvider: string;
  newUid: () => string;
  outputs: {
    seriesNumber: number;
    seriesDescription: string;
    disclaimer: string;
    deviceSerialNumber: string;
    institutionName?: string;
  };
  softwareVersion: string;
  log: Logger;
  /** true once a cancel was asked for through the API; checked before each stage */
  cancelRequested: () => boolean;
}

/**
 * The path of one series through one model: fetch → volume → inference → encode → store. The only function that
 * calls more than one of those stages. The SEG's UIDs come from the job, and the destination is asked before
 * storing, so a job retried after a crash never stores its result twice.
 * @throws DelineateError from whichever stage failed.
 */
export async function runSegmentJob(job: Job, ctx: SegmentContext): Promise<Extract<JobResult, { kind: "segment" }>> {
  const timings: StageTimings = {};
  const timed = async <T>(stage: keyof StageTimings, fn: () => Promise<T> | T): Promise<T> => {
    if (ctx.cancelRequested()) {
      throw new DelineateError("DLN_ERR_CANCELLED", `job ${job.id} was cancelled through the API before its ${stage} stage; nothing was stored`, {
        studyInstanceUID: job.studyInstanceUID,
      });
    }
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      timings[stage] = Math.round(performance.now() - t0) / 1000;
    }
  };
  const study = job.studyInstanceUID;
  const target = job.segment!;
  const { manifest } = ctx.model;
  if (manifest.version !== target.modelVersion) {
    throw new DelineateError("DLN_ERR_MODEL_INVALID", `job ${job.id} is for ${target.modelId} ${target.modelVersion}, but ${manifest.version} is installed; route the study again`, { modelId: target.modelId });
  }

  if (await ctx.destination.instanceExists(study, target.output.sopInstanceUID)) {
    ctx.log.info("result already in the destination; nothing to do", { jobId: job.id, studyInstanceUID: study, sopInstanceUID: target.output.sopInstanceUID });
    return { kind: "segment", executionProvider: target.executionProvider ?? ctx.executionProvider, timings, alreadyStored: true };
  }
  const seriesUID = target.seriesInstanceUID;

  const instances = await timed("fetch", async () => {
    const files = await ctx.source.retrieveSeries(study, seriesUID);
    const parsed: ParsedDicom[] = [];
    for (const [i, bytes] of files.entries()) {
      let p: ParsedDicom;
      try {
        p = parsePart10(bytes);
      } catch (err) {
        throw new DelineateError("DLN_ERR_DICOM_PARSE", `series ${seriesUID}: instance #${i + 1} of ${files.length} is not readable DICOM: ${(err as Error).message}`, {
          seriesInstanceUID: seriesUID,
        });
      }
      const why = instanceUnsuitable({ ...p.dataset, SOPClassUID: str(p.dataset, "SOPClassUID") || p.mediaStorageSOPClassUID }, ctx.sopClassUIDs);
      if (!why) parsed.push(p);
    }
    return parsed;
  });

  const volume = await timed("volume", () => seriesToVolume(instances));
  ctx.log.info("inference started", { jobId: job.id, seriesInstanceUID: seriesUID, dims: volume.dims });
  const labels = await timed("inference", () => ctx.infer(volume));

  const file = await timed("encode", () => {
    const seg = buildSegmentation({
      volume,
      source: instances[0]!.dataset,
      labels,
      segmentLabels: manifest.labels,
      algorithm: { name: manifest.id, version: manifest.version },
      uids: { seriesInstanceUID: target.output.seriesInstanceUID, sopInstanceUID: target.output.sopInstanceUID, dimensionOrganizationUID: ctx.newUid() },
      series: { number: ctx.outputs.seriesNumber, description: ctx.outputs.seriesDescription },
      equipment: {
        manufacturer: "Delineate",
        modelName: "Delineate",
        deviceSerialNumber: ctx.outputs.deviceSerialNumber,
        softwareVersion: ctx.softwareVersion,
        ...(ctx.outputs.institutionName ? { institutionName: ctx.outputs.institutionName } : {}),
      },
      disclaimer: ctx.outputs.disclaimer,
      now: new Date(),
    });
    return writePart10(seg.dataset);
  });

  await timed("store", () => ctx.destination.store(study, [file]));
  ctx.log.info("SEG stored", { jobId: job.id, studyInstanceUID: study, seriesInstanceUID: seriesUID, destination: target.destination, segSOPInstanceUID: target.output.sopInstanceUID, bytes: file.byteLength, timings });
  return { kind: "segment", executionProvider: ctx.executionProvider, timings, alreadyStored: false };
}
