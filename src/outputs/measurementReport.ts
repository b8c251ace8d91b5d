import { type CodedConcept, codeItem, DCM, LOINC, RFC5646, SCT, UCUM } from "../dicom/codes.js";
import type { NaturalDataset } from "../dicom/dataset.js";
import { SopClass } from "../dicom/uids.js";
import { DelineateError } from "../errors.js";
import { labelVoxelCounts } from "../volume/volume.js";
import { type DerivedObjectInput, derivedObjectHeader, dicomDateTime, ds } from "./attributes.js";
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
}

/**
 * A TID 1500 Imaging Measurement Report (Enhanced SR): one measurement group per segment of the SEG, with the
 * segment's volume in mL (voxel count × voxel volume on the source grid), referencing the SEG segment and the
 * source series; Delineate as the device observer; every referenced instance in the evidence sequence.
 * @throws DelineateError DLN_ERR_OUTPUT_INVALID when the SEG and the label map disagree.
 */
export function buildMeasurementReport(input: MeasurementReportInput): NaturalDataset {
  const { volume, segmentation } = input;
  const seg = segmentation.dataset;
  const modality = String(input.source.Modality ?? "");
  const procedure = PROCEDURE[modality];
  if (!procedure)
    throw new DelineateError(
      "DLN_ERR_OUTPUT_INVALID",
      `SR for series ${volume.seriesInstanceUID}: no procedure code for modality ${modality}`,
      { seriesInstanceUID: volume.seriesInstanceUID },
    );
  const counts = labelVoxelCounts(input.labels);
  const voxelMl = (volume.spacing[0] * volume.spacing[1] * volume.spacing[2]) / 1000;
  const { date, time } = dicomDateTime(input.now);

  const groups = input.segmentLabels
    .filter((l) => segmentation.segmentNumbers.has(l.value))
    .map((label) => {
      const number = segmentation.segmentNumbers.get(label.value)!;
      return {
        RelationshipType: "CONTAINS",
        ValueType: "CONTAINER",
        ConceptNameCodeSequence: [codeItem(DCM.MeasurementGroup)],
        ContinuityOfContent: "SEPARATE",
        ContentTemplateSequence: [{ MappingResource: "DCMR", TemplateIdentifier: "1411" }],
        ContentSequence: [
          {
            RelationshipType: "HAS OBS CONTEXT",
            ValueType: "TEXT",
            ConceptNameCodeSequence: [codeItem(DCM.TrackingIdentifier)],
            TextValue: label.name,
          },
          {
            RelationshipType: "HAS OBS CONTEXT",
            ValueType: "UIDREF",
            ConceptNameCodeSequence: [codeItem(DCM.TrackingUniqueIdentifier)],
            UID: input.uids.trackingUID(number),
          },
          {
            RelationshipType: "CONTAINS",
            ValueType: "CODE",
            ConceptNameCodeSequence: [codeItem(DCM.Finding)],
            ConceptCodeSequence: [codeItem(label.type)],
          },
          {
            RelationshipType: "CONTAINS",
            ValueType: "IMAGE",
            ConceptNameCodeSequence: [codeItem(DCM.ReferencedSegment)],
            ReferencedSOPSequence: [
              {
                ReferencedSOPClassUID: seg.SOPClassUID,
                ReferencedSOPInstanceUID: seg.SOPInstanceUID,
                ReferencedSegmentNumber: number,
              },
            ],
          },
          {
            RelationshipType: "CONTAINS",
            ValueType: "UIDREF",
            ConceptNameCodeSequence: [codeItem(DCM.SourceSeriesForSegmentation)],
            UID: volume.seriesInstanceUID,
          },
          {
            RelationshipType: "CONTAINS",
            ValueType: "NUM",
            ConceptNameCodeSequence: [codeItem(SCT.Volume)],
            MeasuredValueSequence: [
              {
                MeasurementUnitsCodeSequence: [codeItem(UCUM.Milliliter)],
                NumericValue: ds(counts[label.value]! * voxelMl),
              },
            ],
          },
        ],
      };
    });
  if (!groups.length)
    throw new DelineateError(
      "DLN_ERR_OUTPUT_INVALID",
      `SR for series ${volume.seriesInstanceUID}: the SEG has no segment`,
      { seriesInstanceUID: volume.seriesInstanceUID },
    );

  return {
    ...derivedObjectHeader({ ...input, sopClassUID: SopClass.EnhancedSRStorage, modality: "SR" }),
    ReferencedPerformedProcedureStepSequence: [],
    ContentDate: date,
    ContentTime: time,
    CompletionFlag: "COMPLETE",
    VerificationFlag: "UNVERIFIED",
    PerformedProcedureCodeSequence: [],
    CurrentRequestedProcedureEvidenceSequence: [
      {
        StudyInstanceUID: volume.studyInstanceUID,
        ReferencedSeriesSequence: [
          {
            SeriesInstanceUID: seg.SeriesInstanceUID,
            ReferencedSOPSequence: [
              { ReferencedSOPClassUID: seg.SOPClassUID, ReferencedSOPInstanceUID: seg.SOPInstanceUID },
            ],
          },
          {
            SeriesInstanceUID: volume.seriesInstanceUID,
            ReferencedSOPSequence: volume.slices.map((s) => ({
              ReferencedSOPClassUID: s.sopClassUID,
              ReferencedSOPInstanceUID: s.sopInstanceUID,
            })),
          },
        ],
      },
    ],
    ValueType: "CONTAINER",
    ConceptNameCodeSequence: [codeItem(DCM.ImagingMeasurementReport)],
    ContinuityOfContent: "SEPARATE",
    ContentTemplateSequence: [{ MappingResource: "DCMR", TemplateIdentifier: "1500" }],
    ContentSequence: [
      {
        RelationshipType: "HAS CONCEPT MOD",
        ValueType: "CODE",
        ConceptNameCodeSequence: [codeItem(DCM.LanguageOfContentItemAndDescendants)],
        ConceptCodeSequence: [codeItem(RFC5646.EnglishUnitedStates)],
      },
      {
        RelationshipType: "HAS OBS CONTEXT",
        ValueType: "CODE",
        ConceptNameCodeSequence: [codeItem(DCM.ObserverType)],
        ConceptCodeSequence: [codeItem(DCM.Device)],
      },
      {
        RelationshipType: "HAS OBS CONTEXT",
        ValueType: "UIDREF",
        ConceptNameCodeSequence: [codeItem(DCM.DeviceObserverUID)],
        UID: input.uids.deviceObserverUID,
      },
      {
        RelationshipType: "HAS OBS CONTEXT",
        ValueType: "TEXT",
        ConceptNameCodeSequence: [codeItem(DCM.DeviceObserverName)],
        TextValue: "Delineate",
      },
      {
        RelationshipType: "HAS OBS CONTEXT",
        ValueType: "TEXT",
        ConceptNameCodeSequence: [codeItem(DCM.DeviceObserverManufacturer)],
        TextValue: input.equipment.manufacturer,
      },
      {
        RelationshipType: "HAS OBS CONTEXT",
        ValueType: "TEXT",
        ConceptNameCodeSequence: [codeItem(DCM.DeviceObserverModelName)],
        TextValue: input.equipment.modelName,
      },
      {
        RelationshipType: "HAS OBS CONTEXT",
        ValueType: "TEXT",
        ConceptNameCodeSequence: [codeItem(DCM.DeviceObserverSerialNumber)],
        TextValue: input.equipment.deviceSerialNumber,
      },
      {
        RelationshipType: "HAS CONCEPT MOD",
        ValueType: "CODE",
        ConceptNameCodeSequence: [codeItem(DCM.ProcedureReported)],
        ConceptCodeSequence: [codeItem(procedure)],
      },
      {
        RelationshipType: "CONTAINS",
        ValueType: "CONTAINER",
        ConceptNameCodeSequence: [codeItem(DCM.ImagingMeasurements)],
        ContinuityOfContent: "SEPARATE",
        ContentSequence: groups,
      },
    ],
  };
}
