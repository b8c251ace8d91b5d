import { type NaturalDataset, parsePart10, str, withSopClass } from "../../dicom/dataset.js";
import { readMultipartStream } from "../../pacs/multipart.js";
import type { RuleDecision } from "../../route/routeStudy.js";
import type { RoutingRule } from "../../route/rules.js";
import { selectSeries } from "../../route/selectSeries.js";

/** What the rules make of dropped files: per study, each rule's decision; and how many files were not DICOM. */
export interface FilesVerdict {
  studies: { studyInstanceUID: string; decisions: RuleDecision[] }[];
  files: number;
  notDicom: number;
}

/**
 * The rule tester for files (dropped on the rules page, sent as multipart/form-data): each part's header is read
 * (no pixels kept; one part in memory at a time), the instances are grouped by study and series as QIDO-RS and
 * WADO-RS metadata would give them, and every rule is applied by the same selectSeries the route stage calls.
 */
export async function rulesForFiles(
  body: AsyncIterable<Uint8Array>,
  boundary: string,
  rules: readonly RoutingRule[],
  maxBytes: number,
): Promise<FilesVerdict> {
  const studies = new Map<string, Map<string, NaturalDataset[]>>();
  let files = 0;
  let notDicom = 0;
  for await (const part of readMultipartStream(body, boundary, maxBytes)) {
    files++;
    let ds: NaturalDataset;
    try {
      ds = withSopClass(parsePart10(part, { headersOnly: true }));
    } catch {
      // the tester reports how many dropped files were not DICOM; why each one is not is no help there
      notDicom++;
      continue;
    }
    const study = str(ds, "StudyInstanceUID");
    const series = str(ds, "SeriesInstanceUID");
    if (!study || !series) {
      notDicom++;
      continue;
    }
    const bySeries = studies.get(study) ?? new Map<string, NaturalDataset[]>();
    bySeries.set(series, [...(bySeries.get(series) ?? []), ds]);
    studies.set(study, bySeries);
  }
  return {
    files,
    notDicom,
    studies: [...studies].map(([studyInstanceUID, bySeries]) => {
      // a series' own attributes are those of its first instance, as a PACS's QIDO-RS answer would hold them
      const candidates = [...bySeries.values()].map((instances) => ({ series: instances[0]!, instances }));
      return {
        studyInstanceUID,
        decisions: rules.map((rule) => ({
          rule: rule.name,
          models: rule.models,
          destination: rule.destination,
          ...selectSeries(studyInstanceUID, candidates, rule.match),
        })),
      };
    }),
  };
}
