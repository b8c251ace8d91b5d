import type { RuleConfig } from "../config/schema.js";
import { SopClass } from "../dicom/uids.js";
import { DelineateError } from "../errors.js";
import type { RouteRule } from "./selectSeries.js";

export type OutputKind = NonNullable<RuleConfig["outputs"]>[number];

/** A routing rule ready to apply: its match criteria complete, its models named. */
export interface RoutingRule {
  name: string;
  match: RouteRule;
  models: readonly string[];
  outputs: readonly OutputKind[];
  /** "pacs" (the source PACS) or a configured destination's name */
  destination: string;
}

/** The single-frame image storage classes a modality's models take unless a rule says otherwise. */
const IMAGE_STORAGE: Readonly<Record<string, readonly string[]>> = {
  CT: [SopClass.CTImageStorage],
  MR: [SopClass.MRImageStorage],
  PT: [SopClass.PositronEmissionTomographyImageStorage],
  // other images: Secondary Capture (e.g. microscopy wrapped by training/em_to_dicom.py)
  OT: [SopClass.SecondaryCaptureImageStorage],
};

/**
 * Completes the configured rules (or the default one: CT image series to the default model): a rule's modality
 * defaults to its models' modality, its SOP classes to that modality's image storage class, its outputs to those
 * its models declare.
 * @throws DelineateError DLN_ERR_CONFIG_INVALID when a rule's models disagree on modality or the modality has no default class.
 */
export function resolveRules(
  rules: readonly RuleConfig[] | undefined,
  defaultModel: string,
  model: (modelId: string) => { modality: string; outputs: readonly OutputKind[] },
): RoutingRule[] {
  const modalityOf = (id: string) => model(id).modality;
  const configured: readonly RuleConfig[] = rules ?? [
    { name: "default", match: {}, models: [defaultModel], destination: "pacs" },
  ];
  return configured.map((r) => {
    const modalities = new Set(r.models.map(modalityOf));
    const modality = r.match.modality ?? [...modalities][0]!;
    if (modalities.size > 1 || !modalities.has(modality)) {
      throw new DelineateError(
        "DLN_ERR_CONFIG_INVALID",
        `routing rule "${r.name}": its models take ${[...modalities].join(" and ")}, but the rule matches ${modality}`,
        { rule: r.name },
      );
    }
    const sopClassUIDs = r.match.sopClassUIDs ?? IMAGE_STORAGE[modality];
    if (!sopClassUIDs) {
      throw new DelineateError(
        "DLN_ERR_CONFIG_INVALID",
        `routing rule "${r.name}": name the SOP classes (match.sopClassUIDs) for modality ${modality}`,
        { rule: r.name },
      );
    }
    // by default, what every model of the rule declares (an SR only with its SEG)
    let outputs =
      r.outputs ??
      (["seg", "sr", "rtstruct", "sc"] as const).filter((o) => r.models.every((m) => model(m).outputs.includes(o)));
    if (outputs.includes("sr") && !outputs.includes("seg")) outputs = outputs.filter((o) => o !== "sr");
    if (!outputs.length)
      throw new DelineateError(
        "DLN_ERR_CONFIG_INVALID",
        `routing rule "${r.name}": its models declare no output in common; name the rule's outputs`,
        { rule: r.name },
      );
    const { modality: _m, sopClassUIDs: _s, ...criteria } = r.match;
    return {
      name: r.name,
      match: { ...criteria, modality, sopClassUIDs },
      models: r.models,
      outputs,
      destination: r.destination,
    };
  });
}
