import { type CodedConcept, codeItem, DCM, LOINC, RFC5646, SCT, UCUM } from "../dicom/codes.js";
import type { NaturalDataset } from "../dicom/dataset.js";
import { SopClass } from "../dicom/uids.js";
import type { ModelLabel } from "../models/manifest.js";
import { labelVoxelCounts, type Volume } from "../volume/volume.js";
import {
  type DerivedObjectInput,
  derivedObjectHeader,
  dicomDateTime,
  ds,
  outputInvalid,
  sourceImageReferences,
} from "./attributes.js";
import type { Segmentation } from "./segmentation.js";

/** Procedure reported (CID 100 Quantitative Diagnostic Imaging Procedures), by the source modality. */
const PROCEDURE: Readonly<Record<string, CodedConcept>> = {
  CT: LOINC.CTUnspecifiedBodyRegion,
  MR: LOINC.MRIUnspecifiedBodyRegion,
};

export interface MeasurementReportInput extends DerivedObjectInput {
  /** the SEG the report's groups reference, as written (its segment numbers) */
  segmentation: Segmentation;
  uids: {
    seriesInstanceUID: string;
    sopInstanceUID: string;
    deviceObserverUID: string;
    trackingUID: (segmentNumber: number) => string;
  };
  /** labelVoxelCounts of `labels`, when the caller has them already (one pass over the label map less) */
  voxelCounts?: Float64Array;
}

/**
 * A TID 1500 Imaging Measurement Report (Enhanced SR): one measurement group per segment of the SEG, with the
 * segment's volume in mL (voxel count × voxel volume on the source grid), referencing the SEG segment and the
 * source series; Delineate as the device observer; every referenced instance in the evidence sequence.
 * @throws DelineateError DLN_ERR_OUTPUT_INVALID when the SEG and the label map disagree.
 */
export function buildMeasurementReport(input: MeasurementReportInput): NaturalDataset {
  const { volume, segmentation } = input;
  const invalid = outputInvalid("SR", volume);
  const modality = String(input.source.Modality ?? "");
  const procedure = PROCEDURE[modality];
  if (!procedure) throw invalid(`no procedure code for modality ${modality}`);
  const groups = measurementGroups(input);
  if (!groups.length) throw invalid("the SEG has no segment");

  const { date, time } = dicomDateTime(input.now);
  return {
    ...derivedObjectHeader({ ...input, sopClassUID: SopClass.EnhancedSRStorage, modality: "SR" }),
    ReferencedPerformedProcedureStepSequence: [],
    ContentDate: date,
    ContentTime: time,
    CompletionFlag: "COMPLETE",
    VerificationFlag: "UNVERIFIED",
    PerformedProcedureCodeSequence: [],
    CurrentRequestedProcedureEvidenceSequence: currentRequestedProcedureEvidence(volume, segmentation.dataset),
    ...container(DCM.ImagingMeasurementReport, "1500", [
      codeContent("HAS CONCEPT MOD", DCM.LanguageOfContentItemAndDescendants, RFC5646.EnglishUnitedStates),
      ...deviceObserverContext(input),
      codeContent("HAS CONCEPT MOD", DCM.ProcedureReported, procedure),
      { RelationshipType: "CONTAINS", ...container(DCM.ImagingMeasurements, undefined, groups) },
    ]),
  };
}

/** A CONTAINER content item (its relationship, where it has one, is the caller's), of template `template` if given. */
function container(concept: CodedConcept, template: string | undefined, content: NaturalDataset[]): NaturalDataset {
  return {
    ValueType: "CONTAINER",
    ConceptNameCodeSequence: [codeItem(concept)],
    ContinuityOfContent: "SEPARATE",
    ...(template ? { ContentTemplateSequence: [{ MappingResource: "DCMR", TemplateIdentifier: template }] } : {}),
    ContentSequence: content,
  };
}

type Relationship = "CONTAINS" | "HAS OBS CONTEXT" | "HAS CONCEPT MOD";

/** A content item of the SR tree: its relationship to its parent, value type, concept name and value attributes. */
function contentItem(
  relationship: Relationship,
  valueType: string,
  concept: CodedConcept,
  value: NaturalDataset,
): NaturalDataset {
  return {
    RelationshipType: relationship,
    ValueType: valueType,
    ConceptNameCodeSequence: [codeItem(concept)],
    ...value,
  };
}

const codeContent = (relationship: Relationship, concept: CodedConcept, code: CodedConcept) =>
  contentItem(relationship, "CODE", concept, { ConceptCodeSequence: [codeItem(code)] });
const textContent = (relationship: Relationship, concept: CodedConcept, text: string) =>
  contentItem(relationship, "TEXT", concept, { TextValue: text });
const uidContent = (relationship: Relationship, concept: CodedConcept, uid: string) =>
  contentItem(relationship, "UIDREF", concept, { UID: uid });

/** TID 1500's observation context: Delineate as the device observer (TID 1004). */
function deviceObserverContext(input: MeasurementReportInput): NaturalDataset[] {
  return [
    codeContent("HAS OBS CONTEXT", DCM.ObserverType, DCM.Device),
    uidContent("HAS OBS CONTEXT", DCM.DeviceObserverUID, input.uids.deviceObserverUID),
    textContent("HAS OBS CONTEXT", DCM.DeviceObserverName, "Delineate"),
    textContent("HAS OBS CONTEXT", DCM.DeviceObserverManufacturer, input.equipment.manufacturer),
    textContent("HAS OBS CONTEXT", DCM.DeviceObserverModelName, input.equipment.modelName),
    textContent("HAS OBS CONTEXT", DCM.DeviceObserverSerialNumber, input.equipment.deviceSerialNumber),
  ];
}

/** One measurement group (TID 1411) per SEG segment, in the model's label order, each with its volume in mL. */
function measurementGroups(input: MeasurementReportInput): NaturalDataset[] {
  const { volume, segmentation } = input;
  const counts = input.voxelCounts ?? labelVoxelCounts(input.labels);
  const voxelMl = (volume.spacing[0] * volume.spacing[1] * volume.spacing[2]) / 1000;
  return input.segmentLabels
    .filter((l) => segmentation.segmentNumbers.has(l.value))
    .map((label) => {
      const number = segmentation.segmentNumbers.get(label.value)!;
      return measurementGroup(input, label, number, counts[label.value]! * voxelMl);
    });
}

/** A TID 1411 volumetric ROI measurement group: tracking identifiers, finding, the SEG segment, source series, volume. */
function measurementGroup(
  input: MeasurementReportInput,
  label: ModelLabel,
  segmentNumber: number,
  volumeMl: number,
): NaturalDataset {
  const seg = input.segmentation.dataset;
  return {
    RelationshipType: "CONTAINS",
    ...container(DCM.MeasurementGroup, "1411", [
      textContent("HAS OBS CONTEXT", DCM.TrackingIdentifier, label.name),
      uidContent("HAS OBS CONTEXT", DCM.TrackingUniqueIdentifier, input.uids.trackingUID(segmentNumber)),
      codeContent("CONTAINS", DCM.Finding, label.type),
      contentItem("CONTAINS", "IMAGE", DCM.ReferencedSegment, {
        ReferencedSOPSequence: [
          {
            ReferencedSOPClassUID: seg.SOPClassUID,
            ReferencedSOPInstanceUID: seg.SOPInstanceUID,
            ReferencedSegmentNumber: segmentNumber,
          },
        ],
      }),
      uidContent("CONTAINS", DCM.SourceSeriesForSegmentation, input.volume.seriesInstanceUID),
      contentItem("CONTAINS", "NUM", SCT.Volume, {
        MeasuredValueSequence: [
          { MeasurementUnitsCodeSequence: [codeItem(UCUM.Milliliter)], NumericValue: ds(volumeMl) },
        ],
      }),
    ]),
  };
}

/** The Current Requested Procedure Evidence: the SEG and every source image the report rests on. */
function currentRequestedProcedureEvidence(volume: Volume, seg: NaturalDataset): NaturalDataset[] {
  return [
    {
      StudyInstanceUID: volume.studyInstanceUID,
      ReferencedSeriesSequence: [
        {
          SeriesInstanceUID: seg.SeriesInstanceUID,
          ReferencedSOPSequence: [
            { ReferencedSOPClassUID: seg.SOPClassUID, ReferencedSOPInstanceUID: seg.SOPInstanceUID },
          ],
        },
        { SeriesInstanceUID: volume.seriesInstanceUID, ReferencedSOPSequence: sourceImageReferences(volume) },
      ],
    },
  ];
}
