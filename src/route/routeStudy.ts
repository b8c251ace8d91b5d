import { type NaturalDataset, str } from "../dicom/dataset.js";
import type { StudySource } from "../pacs/source.js";
import type { RoutingRule } from "./rules.js";
import { type SeriesChoice, selectSeries } from "./selectSeries.js";

/** What one rule makes of a study: the series it takes, or why it takes none; and every series it passed over. */
export interface RuleDecision extends SeriesChoice {
  rule: string;
  models: readonly string[];
  destination: string;
}

/**
 * The route stage: asks the source (the PACS, or the pushed store) for the study's series (QIDO-RS) and, for those
 * of a modality some rule takes, their instances' metadata (WADO-RS, once per series), then applies every rule.
 * The route job and the dry-run API both call this.
 * @throws DelineateError from the source (the PACS unreachable, say).
 */
export async function routeStudy(
  source: StudySource,
  studyInstanceUID: string,
  rules: readonly RoutingRule[],
): Promise<RuleDecision[]> {
  const wanted = new Set(rules.map((r) => r.match.modality));
  const series = await source.searchSeries(studyInstanceUID);
  const candidates = await Promise.all(
    series.map(
      async (s): Promise<{ series: NaturalDataset; instances?: NaturalDataset[] }> =>
        wanted.has(str(s, "Modality"))
          ? { series: s, instances: await source.seriesMetadata(studyInstanceUID, str(s, "SeriesInstanceUID")) }
          : { series: s },
    ),
  );
  return rules.map((rule) => ({
    rule: rule.name,
    models: rule.models,
    destination: rule.destination,
    ...selectSeries(studyInstanceUID, candidates, rule.match),
  }));
}
