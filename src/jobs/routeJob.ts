import { DelineateError } from "../errors.js";
import type { Logger } from "../log.js";
import type { StudySource } from "../pacs/source.js";
import { routeStudy } from "../route/routeStudy.js";
import type { RoutingRule } from "../route/rules.js";
import type { JobResult, RouteJob, SegmentTarget } from "./job.js";

export interface RouteContext {
  source: StudySource;
  rules: readonly RoutingRule[];
  /** the version of each installed model, by id */
  modelVersion: (modelId: string) => string;
  log: Logger;
}

/**
 * A route job: applies every rule to the study and names one segment job per (series taken, model of the rule).
 * The store makes those jobs in the transaction that ends this one.
 * @throws DelineateError DLN_ERR_NO_SERIES (the job is skipped) when no rule takes any series, with each rule's reason.
 * @throws DelineateError DLN_ERR_STUDY_NOT_FOUND when the source has no series of the study at all (the worker waits
 * for it up to ingest.absentStudySeconds).
 */
export async function runRouteJob(job: RouteJob, ctx: RouteContext): Promise<Extract<JobResult, { kind: "route" }>> {
  const t0 = performance.now();
  const study = job.studyInstanceUID;
  const decisions = await routeStudy(ctx.source, study, ctx.rules);
  const route = Math.round(performance.now() - t0) / 1000;
  // no rule saw a series at all: the source has none of the study (a webhook may announce one that is not there yet)
  if (decisions.every((d) => !d.seriesInstanceUID && d.skipped.length === 0))
    throw new DelineateError(
      "DLN_ERR_STUDY_NOT_FOUND",
      `the ${job.source === "pushed" ? "pushed store" : "PACS"} has no series of study ${study}`,
      {
        studyInstanceUID: study,
      },
    );
  const jobs: SegmentTarget[] = [];
  for (const d of decisions) {
    const rule = ctx.rules.find((r) => r.name === d.rule);
    ctx.log.info("routing rule applied", {
      jobId: job.id,
      studyInstanceUID: study,
      rule: d.rule,
      seriesInstanceUID: d.seriesInstanceUID,
      skipped: d.skipped,
    });
    if (!d.seriesInstanceUID || !rule) continue;
    for (const modelId of rule.models) {
      jobs.push({
        seriesInstanceUID: d.seriesInstanceUID,
        modelId,
        modelVersion: ctx.modelVersion(modelId),
        rule: rule.name,
        destination: rule.destination,
        outputs: rule.outputs,
      });
    }
  }
  if (!jobs.length) {
    const why =
      decisions.length === 1
        ? decisions[0]!.reason!
        : `no routing rule takes a series of study ${study}: ${decisions.map((d) => `rule "${d.rule}": ${d.reason}`).join("; ")}`;
    throw new DelineateError("DLN_ERR_NO_SERIES", why, { studyInstanceUID: study });
  }
  return { kind: "route", timings: { route }, decisions, jobs };
}
