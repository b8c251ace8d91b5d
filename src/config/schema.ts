import { z } from "zod";

const Regex = z.string().refine((s) => {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}, "not a valid regular expression");

/** The node's configuration. Parsed once, frozen, passed in; no module reads configuration on its own. */
export const ConfigSchema = z
  .object({
    pacs: z
      .object({
        url: z.url().describe("Orthanc base URL; DICOMweb lives under dicomWebRoot"),
        dicomWebRoot: z.string().startsWith("/").default("/dicom-web"),
        username: z.string().default(""),
        password: z.string().default(""),
        timeoutMs: z.number().int().positive().default(120_000),
        /** PEM file of the CA(s) to trust for an https PACS, besides the system's */
        caFile: z.string().min(1).optional(),
      })
      .strict(),
    dataDir: z.string().min(1).describe("where the job store and the ingest cursor live"),
    http: z
      .object({
        host: z.string().default("127.0.0.1"),
        port: z.number().int().min(0).max(65535),
        apiToken: z.string().default("").describe("required on /api; empty disables the API"),
      })
      .strict(),
    ingest: z
      .object({
        /** poll Orthanc's change feed for StableStudy */
        changeFeed: z.boolean().default(true),
        pollIntervalSeconds: z.number().positive().max(3600).default(5),
        /** accept POST /api/webhook/stable-study (orthanc/delineate-webhook.lua sends it) */
        webhook: z.boolean().default(false),
        /** poll QIDO-RS for studies, for DICOMweb servers that are not Orthanc */
        qido: z
          .object({
            enabled: z.boolean(),
            /** look at studies whose StudyDate is within this many days of today */
            lookbackDays: z.number().int().min(0).max(365).default(2),
            /** a study counts as complete once its instance count has not changed for this long */
            quietSeconds: z.number().min(0).default(120),
          })
          .strict()
          .default({ enabled: false, lookbackDays: 2, quietSeconds: 120 }),
        /** Delineate's own STOW-RS at /dicom-web/studies, for PACS and modalities that push */
        stow: z
          .object({
            enabled: z.boolean(),
            /** a pushed study is queued once nothing more has arrived for this long */
            quietSeconds: z.number().min(0).default(30),
            maxBodyMiB: z.number().positive().max(16384).default(2048),
          })
          .strict()
          .default({ enabled: false, quietSeconds: 30, maxBodyMiB: 2048 }),
      })
      .strict()
      .refine((i) => i.changeFeed || i.webhook || i.qido.enabled || i.stow.enabled, "enable at least one of changeFeed, webhook, qido and stow"),
    model: z.object({ dir: z.string().min(1), id: z.string().min(1) }).strict(),
    /** which series the model takes, besides its modality (src/route/selectSeries.ts) */
    route: z
      .object({
        sopClassUIDs: z.array(z.string().regex(/^[0-9.]+$/)).min(1).default(["1.2.840.10008.5.1.4.1.1.2"]),
        seriesDescription: z.object({ include: Regex.optional(), exclude: Regex.optional() }).strict().optional(),
        bodyPartExamined: z.array(z.string().min(1)).min(1).optional(),
        manufacturer: Regex.optional(),
        orientation: z.array(z.enum(["axial", "coronal", "sagittal", "oblique"])).min(1).optional(),
        minSlices: z.number().int().min(1).optional(),
        maxSlices: z.number().int().min(1).optional(),
      })
      .strict()
      .default({ sopClassUIDs: ["1.2.840.10008.5.1.4.1.1.2"] }),
    inference: z
      .object({
        executionProviders: z.array(z.enum(["cuda", "webgpu", "cpu"])).min(1).default(["cpu"]),
        intraOpThreads: z.number().int().min(0).default(0).describe("0: onnxruntime's default"),
      })
      .strict(),
    outputs: z
      .object({
        uidRoot: z.string().regex(/^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/, "a dotted numeric UID root").max(40).default("2.25"),
        seriesNumber: z.number().int().min(1).max(2 ** 31 - 1),
        seriesDescription: z.string().min(1).max(64),
        disclaimer: z.string().max(10240).default("NOT FOR CLINICAL USE"),
        deviceSerialNumber: z.string().min(1).max(64),
        institutionName: z.string().max(64).optional(),
      })
      .strict(),
    jobs: z
      .object({
        concurrency: z.number().int().min(1).max(64).default(1),
        maxAttempts: z.number().int().min(1).default(5),
        retryBaseSeconds: z.number().positive().default(5),
      })
      .strict(),
    log: z.object({ level: z.enum(["error", "warn", "info", "debug"]).default("info"), file: z.string().optional() }).strict(),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
