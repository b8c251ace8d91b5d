import type { NaturalDataset } from "../dicom/dataset.js";
import { SopClass } from "../dicom/uids.js";
import { DelineateError } from "../errors.js";
import { labelVoxelCounts } from "../volume/volume.js";
import { codeItem, type DerivedObjectInput, derivedObjectHeader, dicomDateTime, ds } from "./attributes.js";
import type { Segmentation } from "./segmentation.js";

const code = (value: string, scheme: string, meaning: string) => ({
  CodeValue: value,
  CodingSchemeDesignator: scheme,
  CodeMeaning: meaning,
});

/** Procedure reported (CID 100 Quantitative Diagnostic Imaging Procedures), by the source modality. */
const PROCEDURE: Readonly<Record<string, ReturnType<typeof code>>> = {
  CT: code("25045-6", "LN", "CT unspecified body region"),
  MR: code("25056-3", "LN", "MRI unspecified body region"),
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
        ConceptNameCodeSequence: [code("125007", "DCM", "Measurement Group")],
        ContinuityOfContent: "SEPARATE",
        ContentTemplateSequence: [{ MappingResource: "DCMR", TemplateIdentifier: "1411" }],
        ContentSequence: [
          {
            RelationshipType: "HAS OBS CONTEXT",
            ValueType: "TEXT",
            ConceptNameCodeSequence: [code("112039", "DCM", "Tracking Identifier")],
            TextValue: label.name,
          },
          {
            RelationshipType: "HAS OBS CONTEXT",
            ValueType: "UIDREF",
            ConceptNameCodeSequence: [code("112040", "DCM", "Tracking Unique Identifier")],
            UID: input.uids.trackingUID(number),
          },
          {
            RelationshipType: "CONTAINS",
            ValueType: "CODE",
            ConceptNameCodeSequence: [code("121071", "DCM", "Finding")],
            ConceptCodeSequence: [codeItem(label.type)],
          },
          {
            RelationshipType: "CONTAINS",
            ValueType: "IMAGE",
            ConceptNameCodeSequence: [code("121191", "DCM", "Referenced Segment")],
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
            ConceptNameCodeSequence: [code("121232", "DCM", "Source series for segmentation")],
            UID: volume.seriesInstanceUID,
          },
          {
            RelationshipType: "CONTAINS",
            ValueType: "NUM",
            ConceptNameCodeSequence: [code("118565006", "SCT", "Volume")],
            MeasuredValueSequence: [
              {
                MeasurementUnitsCodeSequence: [code("mL", "UCUM", "milliliter")],
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
    ConceptNameCodeSequence: [code("126000", "DCM", "Imaging Measurement Report")],
    ContinuityOfContent: "SEPARATE",
    ContentTemplateSequence: [{ MappingResource: "DCMR", TemplateIdentifier: "1500" }],
    ContentSequence: [
      {
        RelationshipType: "HAS CONCEPT MOD",
        ValueType: "CODE",
        ConceptNameCodeSequence: [code("121049", "DCM", "Language of Content Item and Descendants")],
        ConceptCodeSequence: [code("en-US", "RFC5646", "English (United States)")],
      },
      {
        RelationshipType: "HAS OBS CONTEXT",
        ValueType: "CODE",
        ConceptNameCodeSequence: [code("121005", "DCM", "Observer Type")],
        ConceptCodeSequence: [code("121007", "DCM", "Device")],
      },
      {
        RelationshipType: "HAS OBS CONTEXT",
        ValueType: "UIDREF",
        ConceptNameCodeSequence: [code("121012", "DCM", "Device Observer UID")],
        UID: input.uids.deviceObserverUID,
      },
      {
        RelationshipType: "HAS OBS CONTEXT",
        ValueType: "TEXT",
        ConceptNameCodeSequence: [code("121013", "DCM", "Device Observer Name")],
        TextValue: "Delineate",
      },
      {
        RelationshipType: "HAS OBS CONTEXT",
        ValueType: "TEXT",
        ConceptNameCodeSequence: [code("121014", "DCM", "Device Observer Manufacturer")],
        TextValue: input.equipment.manufacturer,
      },
      {
        RelationshipType: "HAS OBS CONTEXT",
        ValueType: "TEXT",
        ConceptNameCodeSequence: [code("121015", "DCM", "Device Observer Model Name")],
        TextValue: input.equipment.modelName,
      },
      {
        RelationshipType: "HAS OBS CONTEXT",
        ValueType: "TEXT",
        ConceptNameCodeSequence: [code("121016", "DCM", "Device Observer Serial Number")],
        TextValue: input.equipment.deviceSerialNumber,
      },
      {
        RelationshipType: "HAS CONCEPT MOD",
        ValueType: "CODE",
        ConceptNameCodeSequence: [code("121058", "DCM", "Procedure reported")],
        ConceptCodeSequence: [procedure],
      },
      {
        RelationshipType: "CONTAINS",
        ValueType: "CONTAINER",
        ConceptNameCodeSequence: [code("126010", "DCM", "Imaging Measurements")],
        ContinuityOfContent: "SEPARATE",
        ContentSequence: groups,
      },
    ],
  };
}
