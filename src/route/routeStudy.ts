import { str } from "../dicom/dataset.js";
import type { StudySource } from "../pacs/source.js";
import { selectSeries, type RouteRule, type SeriesChoice } from "./selectSeries.js";

/**
 * The route stage: asks the source (the PACS, or the pushed store) for the study's series (QIDO-RS) and, for those of the model's modality, their
 * instances' metadata (WADO-RS), then picks the series. The job and the dry-run API both call this.
 * @throws DelineateError DLN_ERR_NO_SERIES, or a PACS error.
 */
export async function routeStudy(pacs: StudySource, studyInstanceUID: string, rule: RouteRule): Promise<SeriesChoice> {
  const series = await pacs.searchSeries(studyInstanceUID);
  const candidates = await Promise.all(
    series.map(async (s) =>
      str(s, "Modality") === rule.modality ? { series: s, instances: await pacs.seriesMetadata(studyInstanceUID, str(s, "SeriesInstanceUID")) } : { series: s },
    ),
  );
  return selectSeries(studyInstanceUID, candidates, rule);
}
