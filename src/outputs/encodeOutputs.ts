import { writePart10, type NaturalDataset } from "../dicom/dataset.js";
import type { ModelManifest } from "../models/manifest.js";
import type { OutputKind } from "../route/rules.js";
import type { LabelMap, Volume } from "../volume/volume.js";
import { buildMeasurementReport } from "./measurementReport.js";
import { buildSegmentation } from "./segmentation.js";
import { buildOverlay } from "./overlay.js";
import { buildStructureSet } from "./structureSet.js";

/** The site's settings for what it writes (config `outputs`). */
export interface OutputSettings {
  seriesNumber: number;
  seriesDescription: string;
  segType: "BINARY" | "LABELMAP";
  sr: { seriesNumber: number; seriesDescription: string };
  rtstruct: { seriesNumber: number; seriesDescription: string };
  sc: { seriesNumber: number; seriesDescription: string; keySlices: number };
  disclaimer: string;
  deviceSerialNumber: string;
  institutionName?: string;
}

export interface EncodedOutput {
  kind: OutputKind;
  sopInstanceUID: string;
  bytes: Uint8Array;
}

export interface EncodeInput {
  volume: Volume;
  /** one source instance, for patient and study attributes */
  source: NaturalDataset;
  labels: LabelMap;
  manifest: ModelManifest;
  kinds: readonly OutputKind[];
  /** each output's series and SOP Instance UIDs, fixed by the caller (the job) */
  uids: Partial<Record<OutputKind, { seriesInstanceUID: string; sopInstanceUID: string }>>;
  settings: OutputSettings;
  softwareVersion: string;
  /** stable for the node: the SR's Device Observer UID */
  deviceObserverUID: string;
  newUid: () => string;
  now: Date;
}

/**
 * The outputs stage: builds the requested objects from one label map (the SEG before the SR, which references its
 * segments; the RTSTRUCT and the overlay on their own) and writes each as a Part 10 file. The volume's intensities
 * must be in place (the overlay draws them). The node and the offline CLI both call this.
 */
export function encodeOutputs(input: EncodeInput): EncodedOutput[] {
  const { manifest, settings } = input;
  const uidsOf = (kind: OutputKind) => input.uids[kind] ?? { seriesInstanceUID: input.newUid(), sopInstanceUID: input.newUid() };
  const equipment = {
    manufacturer: "Delineate",
    modelName: "Delineate",
    deviceSerialNumber: settings.deviceSerialNumber,
    softwareVersion: input.softwareVersion,
    ...(settings.institutionName ? { institutionName: settings.institutionName } : {}),
  };
  const out: EncodedOutput[] = [];
  const algorithm = { name: manifest.id, version: manifest.version };
  if (input.kinds.includes("seg")) {
    const segUids = uidsOf("seg");
    const seg = buildSegmentation({
      volume: input.volume,
      source: input.source,
      labels: input.labels,
      segmentLabels: manifest.labels,
      algorithm,
      uids: { ...segUids, dimensionOrganizationUID: input.newUid() },
      series: { number: settings.seriesNumber, description: settings.seriesDescription },
      equipment,
      disclaimer: settings.disclaimer,
      now: input.now,
      type: settings.segType,
    });
    out.push({ kind: "seg", sopInstanceUID: segUids.sopInstanceUID, bytes: writePart10(seg.dataset) });
    if (input.kinds.includes("sr")) {
      const srUids = uidsOf("sr");
      const sr = buildMeasurementReport({
        volume: input.volume,
        source: input.source,
        labels: input.labels,
        segmentLabels: manifest.labels,
        segmentation: seg,
        uids: { ...srUids, deviceObserverUID: input.deviceObserverUID, trackingUID: () => input.newUid() },
        series: { number: settings.sr.seriesNumber, description: settings.sr.seriesDescription },
        equipment,
        now: input.now,
      });
      out.push({ kind: "sr", sopInstanceUID: srUids.sopInstanceUID, bytes: writePart10(sr) });
    }
  }
  if (input.kinds.includes("rtstruct")) {
    const rtUids = uidsOf("rtstruct");
    const rt = buildStructureSet({
      volume: input.volume,
      source: input.source,
      labels: input.labels,
      segmentLabels: manifest.labels,
      algorithm,
      uids: rtUids,
      series: { number: settings.rtstruct.seriesNumber, description: settings.rtstruct.seriesDescription },
      equipment,
      disclaimer: settings.disclaimer,
      now: input.now,
    });
    out.push({ kind: "rtstruct", sopInstanceUID: rtUids.sopInstanceUID, bytes: writePart10(rt) });
  }
  if (input.kinds.includes("sc")) {
    const scUids = uidsOf("sc");
    const sc = buildOverlay({
      volume: input.volume,
      source: input.source,
      labels: input.labels,
      segmentLabels: manifest.labels,
      uids: scUids,
      series: { number: settings.sc.seriesNumber, description: settings.sc.seriesDescription },
      equipment,
      disclaimer: settings.disclaimer,
      keySlices: settings.sc.keySlices,
      now: input.now,
    });
    out.push({ kind: "sc", sopInstanceUID: scUids.sopInstanceUID, bytes: writePart10(sc) });
  }
  return out;
}
