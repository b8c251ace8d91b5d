import { type NaturalDataset, writePart10 } from "../dicom/dataset.js";
import type { ModelManifest } from "../models/manifest.js";
import type { OutputKind } from "../route/rules.js";
import type { LabelMap, Volume } from "../volume/volume.js";
import type { Equipment } from "./attributes.js";
import { buildMeasurementReport } from "./measurementReport.js";
import { buildOverlay } from "./overlay.js";
import { buildSegmentation } from "./segmentation.js";
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
  /** labelVoxelCounts of `labels`, when the caller has them already (the SR's volumes; one pass less) */
  voxelCounts?: Float64Array;
}

/**
 * The outputs stage: builds the requested objects from one label map (the SEG before the SR, which references its
 * segments; the RTSTRUCT and the overlay on their own) and writes each as a Part 10 file. The volume's intensities
 * must be in place (the overlay draws them). The node and the offline CLI both call this.
 */
export function encodeOutputs(input: EncodeInput): EncodedOutput[] {
  const { manifest, settings } = input;
  const { disclaimer } = settings;
  // what every builder takes
  const common = {
    volume: input.volume,
    source: input.source,
    labels: input.labels,
    segmentLabels: manifest.labels,
    equipment: delineateEquipment(settings, input.softwareVersion),
    now: input.now,
  };
  const algorithm = { name: manifest.id, version: manifest.version };
  const uidsOf = (kind: OutputKind) =>
    input.uids[kind] ?? { seriesInstanceUID: input.newUid(), sopInstanceUID: input.newUid() };
  const out: EncodedOutput[] = [];
  if (input.kinds.includes("seg")) {
    const uids = uidsOf("seg");
    const segUids = { ...uids, dimensionOrganizationUID: input.newUid() };
    const series = seriesOf(settings);
    const seg = buildSegmentation({ ...common, algorithm, uids: segUids, series, disclaimer, type: settings.segType });
    out.push(encoded("seg", uids, seg.dataset));
    if (input.kinds.includes("sr")) {
      const uids = uidsOf("sr");
      const srUids = { ...uids, deviceObserverUID: input.deviceObserverUID, trackingUID: () => input.newUid() };
      const sr = buildMeasurementReport({
        ...common,
        segmentation: seg,
        uids: srUids,
        series: seriesOf(settings.sr),
        ...(input.voxelCounts ? { voxelCounts: input.voxelCounts } : {}),
      });
      out.push(encoded("sr", uids, sr));
    }
  }
  if (input.kinds.includes("rtstruct")) {
    const uids = uidsOf("rtstruct");
    const series = seriesOf(settings.rtstruct);
    const externalIncludes = rtstructExternalIncludes(manifest);
    out.push(
      encoded(
        "rtstruct",
        uids,
        buildStructureSet({ ...common, algorithm, uids, series, disclaimer, externalIncludes }),
      ),
    );
  }
  if (input.kinds.includes("sc")) {
    const uids = uidsOf("sc");
    const { keySlices } = settings.sc;
    out.push(
      encoded("sc", uids, buildOverlay({ ...common, uids, series: seriesOf(settings.sc), disclaimer, keySlices })),
    );
  }
  return out;
}

/** The label values the EXTERNAL ROI also covers, from the manifest's `rtstruct.externalIncludes` ("all": every other label). */
export function rtstructExternalIncludes(manifest: Pick<ModelManifest, "labels" | "rtstruct">): number[] {
  const setting = manifest.rtstruct.externalIncludes;
  if (setting === "none") return [];
  const others = manifest.labels.filter((l) => l.rtInterpretedType !== "EXTERNAL").map((l) => l.value);
  return setting === "all" ? others : others.filter((v) => setting.includes(v));
}

/** Delineate as the equipment that wrote the outputs, with the site's serial number and institution. */
function delineateEquipment(settings: OutputSettings, softwareVersion: string): Equipment {
  return {
    manufacturer: "Delineate",
    modelName: "Delineate",
    deviceSerialNumber: settings.deviceSerialNumber,
    softwareVersion,
    ...(settings.institutionName ? { institutionName: settings.institutionName } : {}),
  };
}

/** A configured series (number and description) as the builders take it. */
function seriesOf(s: { seriesNumber: number; seriesDescription: string }): { number: number; description: string } {
  return { number: s.seriesNumber, description: s.seriesDescription };
}

/** One output written as a Part 10 file. */
function encoded(kind: OutputKind, uids: { sopInstanceUID: string }, dataset: NaturalDataset): EncodedOutput {
  return { kind, sopInstanceUID: uids.sopInstanceUID, bytes: writePart10(dataset) };
}
