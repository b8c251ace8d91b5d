import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { asDelineateError } from "../errors.js";
import type { InferenceWorker } from "../inference/inferenceWorker.js";
import { segmentSeries } from "../jobs/segmentSeries.js";
import type { ModelPackage } from "../models/loadModel.js";
import type { OutputSettings } from "../outputs/encodeOutputs.js";
import type { OutputKind, RoutingRule } from "../route/rules.js";
import { instanceUnsuitable, selectSeries } from "../route/selectSeries.js";
import type { VolumeOptions } from "../volume/seriesToVolume.js";
import { scanFolder } from "./scanFolder.js";

export interface SegmentFolderOptions {
  folder: string;
  out: string;
  model: ModelPackage;
  rule: RoutingRule;
  formats: readonly OutputKind[];
  inference: Pick<InferenceWorker, "segment">;
  settings: OutputSettings;
  /** how series become volumes (with the decoders for compressed files) */
  volume: VolumeOptions;
  softwareVersion: string;
  deviceObserverUID: string;
  newUid: () => string;
  /** told after each series, for a progress bar */
  progress?: (done: number, total: number) => void;
}

export interface SegmentFolderReport {
  /** files written, by series */
  written: { seriesInstanceUID: string; files: string[] }[];
  /** series that matched the rule but could not be segmented, with why */
  failed: { seriesInstanceUID: string; code: string; message: string }[];
  /** files that are not readable DICOM, with why */
  unreadable: { file: string; reason: string }[];
  /** what was done to the input that a reader of the results should know (e.g. which acquisition was used) */
  warnings: string[];
  /** series of the folder the rule does not take, with why */
  skipped: { seriesInstanceUID: string; reason: string }[];
}

/**
 * `delineate segment`: every series of a folder (searched recursively) that the model's rule takes is segmented
 * and its outputs written under `out/<StudyInstanceUID>/<SeriesInstanceUID>/<kind>.dcm`, through the node's own
 * series path (segmentSeries: volume, inference, outputs). A file that is not DICOM, or a series that is not a volume,
 * is reported and the rest of the folder goes on.
 */
export async function segmentFolder(o: SegmentFolderOptions): Promise<SegmentFolderReport> {
  const report: SegmentFolderReport = { written: [], failed: [], unreadable: [], skipped: [], warnings: [] };
  const { series, unreadable } = scanFolder(o.folder);
  report.unreadable.push(...unreadable);
  const chosen: string[] = [];
  for (const [uid, s] of series) {
    if (s.withoutUid) {
      report.skipped.push({
        seriesInstanceUID: uid,
        reason: "the files have no SeriesInstanceUID, which a SEG, SR or RTSTRUCT must reference",
      });
      continue;
    }
    const first = s.headers[0]!;
    const candidate = {
      series: { SeriesInstanceUID: uid, Modality: first.Modality, SeriesDescription: first.SeriesDescription },
      instances: s.headers,
    };
    const choice = selectSeries(s.study, [candidate], o.rule.match);
    if (choice.seriesInstanceUID) chosen.push(uid);
    else
      report.skipped.push({
        seriesInstanceUID: uid,
        reason: choice.skipped[0]?.reason ?? choice.reason ?? "not taken",
      });
  }
  for (const [n, uid] of chosen.entries()) {
    const s = series.get(uid)!;
    try {
      const instances = s.instances.filter((_, i) => !instanceUnsuitable(s.headers[i]!, o.rule.match.sopClassUIDs));
      const { files: outputs } = await segmentSeries(
        {
          instances,
          volume: o.volume,
          infer: (volume) => o.inference.segment(volume),
          outputs: {
            manifest: o.model.manifest,
            kinds: o.formats,
            uids: {},
            settings: o.settings,
            softwareVersion: o.softwareVersion,
            deviceObserverUID: o.deviceObserverUID,
            newUid: o.newUid,
          },
        },
        // kept as soon as the volume is built, so a series whose inference fails still reports them
        { volumeReady: (_, warnings) => report.warnings.push(...warnings) },
      );
      const dir = path.join(o.out, s.study, uid);
      mkdirSync(dir, { recursive: true });
      const files = outputs.map((f) => {
        const file = path.join(dir, `${f.kind}.dcm`);
        writeFileSync(file, f.bytes);
        return file;
      });
      report.written.push({ seriesInstanceUID: uid, files });
    } catch (thrown) {
      const err = asDelineateError(thrown);
      report.failed.push({ seriesInstanceUID: uid, code: err.code, message: err.message });
    }
    o.progress?.(n + 1, chosen.length);
  }
  return report;
}
