import { z } from "zod";
import { DICOM_UID_PATTERN, isDicomUid } from "../dicom/uids.js";
import { DEFAULT_MAX_MATRIX_SIZE, DEFAULT_MAX_VOXELS } from "../volume/limits.js";

const Regex = z.string().refine((s) => {
  try {
    new RegExp(s);
    return true;
  } catch {
    // the refinement's message says what is wrong; the SyntaxError's own text adds nothing a user can act on
    return false;
  }
}, "not a valid regular expression");

/** An output's series: its Series Number (IS, 1 to 2^31 − 1) and Series Description (LO, 64 characters at most). */
const OutputSeries = {
  seriesNumber: z
    .number()
    .int()
    .min(1)
    .max(2 ** 31 - 1),
  seriesDescription: z.string().min(1).max(64),
};

/** A DICOMweb server: the PACS that studies come from, or another destination for results. */
const Pacs = z
  .object({
    url: z.url().describe("base URL; DICOMweb lives under dicomWebRoot"),
    dicomWebRoot: z.string().startsWith("/").default("/dicom-web"),
    username: z.string().default(""),
    password: z.string().default(""),
    timeoutMs: z.number().int().positive().default(120_000),
    /** PEM file of the CA(s) to trust for an https server, besides the system's */
    caFile: z.string().min(1).optional(),
  })
  .strict();

/** Notifiers (src/notify): each off unless its section is given; results are told through an outbox with retries. */
const Notify = z
  .object({
    /** HL7 v2 ORU^R01 over MLLP to a RIS */
    hl7: z
      .object({
        host: z.string().min(1),
        port: z.number().int().min(1).max(65535),
        /** TLS to the peer; caFile: PEM of the CA(s) to trust besides the system's */
        tls: z
          .object({ caFile: z.string().min(1).optional(), servername: z.string().min(1).optional() })
          .strict()
          .optional(),
        ackTimeoutMs: z.number().int().positive().default(30_000),
        sendingApplication: z.string().min(1).default("DELINEATE"),
        sendingFacility: z.string().default(""),
        receivingApplication: z.string().default(""),
        receivingFacility: z.string().default(""),
      })
      .strict()
      .optional(),
    /** FHIR R4: a transaction Bundle (DiagnosticReport + one Observation per organ) POSTed to the base URL */
    fhir: z
      .object({
        baseUrl: z.url(),
        /** Authorization: Bearer; or username/password for Basic */
        bearerToken: z.string().min(1).optional(),
        username: z.string().min(1).optional(),
        password: z.string().optional(),
        timeoutMs: z.number().int().positive().default(30_000),
      })
      .strict()
      .optional(),
    /** Orthanc (the source PACS): the study marked with a label (HasLabels) or a user metadata entry */
    orthanc: z
      .object({
        enabled: z.boolean(),
        label: z
          .string()
          .regex(/^[A-Za-z0-9_-]+$/)
          .default("delineate"),
        /** on Orthanc without labels; must be declared in its UserMetadata */
        metadata: z.string().min(1).default("Delineate"),
      })
      .strict()
      .optional(),
    /** a JSON POST signed with HMAC-SHA256 of the body (X-Delineate-Signature: sha256=<hex>) */
    webhook: z
      .object({
        url: z.url(),
        secret: z.string().min(16, "at least 16 characters"),
        timeoutMs: z.number().int().positive().default(30_000),
      })
      .strict()
      .optional(),
    maxAttempts: z.number().int().min(1).default(20),
    retryBaseSeconds: z.number().positive().default(5),
    maxRetrySeconds: z.number().positive().default(3600),
  })
  .strict();

/** Which series a rule takes; every field left out matches anything. */
const Match = z
  .object({
    /** defaults to the modality of the rule's models */
    modality: z
      .string()
      .regex(/^[A-Z]{2,4}$/)
      .optional(),
    /** defaults to the modality's image storage class (CT Image Storage for CT) */
    sopClassUIDs: z.array(z.string().refine(isDicomUid, "a DICOM UID")).min(1).optional(),
    seriesDescription: z.object({ include: Regex.optional(), exclude: Regex.optional() }).strict().optional(),
    bodyPartExamined: z.array(z.string().min(1)).min(1).optional(),
    manufacturer: Regex.optional(),
    orientation: z
      .array(z.enum(["axial", "coronal", "sagittal", "oblique"]))
      .min(1)
      .optional(),
    minSlices: z.number().int().min(1).optional(),
    maxSlices: z.number().int().min(1).optional(),
  })
  .strict();

const Rule = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/i, "letters, digits, - and _"),
    match: Match.default({}),
    /** model ids (folders of model.dir); each makes its own job per matched series */
    models: z.array(z.string().min(1)).min(1),
    /**
     * seg: DICOM-SEG; sr: TID 1500 measurement report (volumes), which references the SEG and so needs it; rtstruct:
     * RT Structure Set; sc: a Secondary Capture of key slices with the outlines burnt in, for viewers that show
     * neither SEG nor SR. Default: the outputs every model of the rule declares in its manifest.
     */
    outputs: z
      .array(z.enum(["seg", "sr", "rtstruct", "sc"]))
      .min(1)
      .optional()
      .refine((o) => !o?.includes("sr") || o.includes("seg"), "an sr output needs seg too (the SR references the SEG)"),
    /** "pacs" (the source PACS) or a name from destinations */
    destination: z.string().min(1).default("pacs"),
  })
  .strict();

/** The node's configuration. Parsed once, frozen, passed in; no module reads configuration on its own. */
export const ConfigSchema = z
  .object({
    pacs: Pacs,
    /** other DICOMweb servers a routing rule can send its results to, by name ("pacs" is the source PACS) */
    destinations: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/i), Pacs).default({}),
    dataDir: z.string().min(1).describe("where the job store and the ingest cursor live"),
    /**
     * What this node does (DELINEATE_ROLES or serve --role, comma-separated): ingest (the change-feed and QIDO
     * pollers, one node of the cluster at a time), api (the HTTP API, webhook and STOW-RS), worker (runs jobs).
     */
    roles: z
      .array(z.enum(["ingest", "api", "worker"]))
      .min(1)
      .default(["ingest", "api", "worker"]),
    /**
     * The job store: "sqlite:<path>" (default: delineate.sqlite in dataDir; one node) or
     * "postgres://user:password@host:port/db" (shared by every node of a cluster).
     */
    store: z
      .object({
        url: z
          .string()
          .regex(
            /^(sqlite:.+|postgres(ql)?:\/\/.+)$/,
            'expected "sqlite:<path>" or "postgres://user:password@host:port/db"',
          )
          .optional(),
      })
      .strict()
      .default({}),
    http: z
      .object({
        host: z.string().default("127.0.0.1"),
        port: z.number().int().min(0).max(65535),
        apiToken: z.string().default("").describe("required on /api; empty disables the API"),
        /** a client that has not sent its request's headers within this is cut off */
        headersTimeoutSeconds: z.number().min(1).max(3600).default(30),
        /** a client that has not sent its whole request (body included) within this is cut off (408) */
        requestTimeoutSeconds: z.number().min(1).max(86400).default(900),
      })
      .strict(),
    ingest: z
      .object({
        /** poll Orthanc's change feed for StableStudy */
        changeFeed: z.boolean().default(true),
        pollIntervalSeconds: z.number().positive().max(3600).default(5),
        /** accept POST /api/webhook/stable-study (orthanc/delineate-webhook.lua sends it) */
        webhook: z.boolean().default(false),
        /** the webhook answers 429 (DLN_ERR_INGEST_BUSY) while this many route jobs from the PACS are queued */
        maxPendingStudies: z.number().int().min(1).default(1000),
        /** a route job whose study the PACS does not have waits this long after it was made for it, then fails
         * DLN_ERR_STUDY_NOT_FOUND */
        absentStudySeconds: z.number().min(0).default(600),
        /** such a failed route job is deleted this long after it failed, so they do not pile up for ever */
        absentStudyRetentionHours: z.number().positive().default(24),
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
            /** STOW-RS requests read at once; more get 429 with Retry-After */
            maxConcurrentRequests: z.number().int().min(1).max(1024).default(8),
            /** an instance whose SOP Instance UID is kept with other content: "refuse" (409 for it) or "overwrite" */
            duplicates: z.enum(["refuse", "overwrite"]).default("refuse"),
            /** the most pushed data kept at once; past it instances are refused and a request with none kept gets 507 */
            maxStoredMiB: z.number().positive().default(51200),
            /** a pushed study's files are deleted this long after anything was last written to it, once no job is
             * queued or running for it */
            retentionHours: z.number().positive().default(168),
          })
          .strict()
          .default({
            enabled: false,
            quietSeconds: 30,
            maxBodyMiB: 2048,
            maxConcurrentRequests: 8,
            duplicates: "refuse",
            maxStoredMiB: 51200,
            retentionHours: 168,
          }),
      })
      .strict()
      .refine(
        (i) => i.changeFeed || i.webhook || i.qido.enabled || i.stow.enabled,
        "enable at least one of changeFeed, webhook, qido and stow",
      ),
    model: z.object({ dir: z.string().min(1), id: z.string().min(1) }).strict(),
    /**
     * Routing rules (src/route): each picks, in every announced study, the series it matches and sends it through its
     * models; without any, one rule takes CT image series for the default model.
     */
    routes: z.array(Rule).min(1).optional(),
    inference: z
      .object({
        executionProviders: z
          .array(z.enum(["cuda", "webgpu", "cpu"]))
          .min(1)
          .default(["cpu"]),
        intraOpThreads: z.number().int().min(0).default(0).describe("0: onnxruntime's default"),
      })
      .strict(),
    outputs: z
      .object({
        uidRoot: z.string().regex(DICOM_UID_PATTERN, "a dotted numeric UID root").max(40).default("2.25"),
        ...OutputSeries,
        /** BINARY, or LABELMAP (Supplement 243, 2024: one 8-bit frame per slice; few viewers read it yet) */
        segType: z.enum(["BINARY", "LABELMAP"]).default("BINARY"),
        /** the SR measurement report's series */
        sr: z
          .object(OutputSeries)
          .strict()
          .default({ seriesNumber: 9002, seriesDescription: "Delineate measurements" }),
        /** the RTSTRUCT's series */
        rtstruct: z
          .object(OutputSeries)
          .strict()
          .default({ seriesNumber: 9003, seriesDescription: "Delineate contours" }),
        /** the overlay's series, and how many key slices it shows */
        sc: z
          .object({
            ...OutputSeries,
            keySlices: z.number().int().min(1).max(32),
          })
          .strict()
          .default({ seriesNumber: 9004, seriesDescription: "Delineate overlay", keySlices: 3 }),
        disclaimer: z.string().max(10240).default("NOT FOR CLINICAL USE"),
        deviceSerialNumber: z.string().min(1).max(64),
        institutionName: z.string().max(64).optional(),
      })
      .strict(),
    /** how a series becomes a volume; see docs/conversion.md */
    volume: z
      .object({
        /** fewer slices than this is not a volume */
        minSlices: z.number().int().min(1).default(3),
        /** a stack whose slice step leans more than this from the normal, or whose GantryDetectorTilt exceeds it, is tilted */
        maxTiltDegrees: z.number().min(0).max(45).default(0.05),
        /** largest relative deviation of a slice step from the median before the spacing counts as irregular */
        spacingTolerance: z.number().min(0).max(1).default(0.01),
        /** a tilted stack: "correct" resamples it onto a rectilinear grid (a warning on the job; outputs mapped back onto
         * the source slices), "refuse" fails the job */
        tilt: z.enum(["correct", "refuse"]).default("correct"),
        /** missing slices or irregular steps: "resample" to equal steps (convert; the node always refuses, since its
         * outputs must lie on source images), or "refuse" */
        irregularSpacing: z.enum(["resample", "refuse"]).default("resample"),
        /** the largest Rows or Columns a series may declare; checked before anything is allocated */
        maxMatrixSize: z.number().int().min(1).max(65535).default(DEFAULT_MAX_MATRIX_SIZE),
        /** the most voxels (Rows × Columns × frames, all instances) a series may declare */
        maxVoxels: z
          .number()
          .int()
          .min(1)
          .max(2 ** 31)
          .default(DEFAULT_MAX_VOXELS),
      })
      .strict()
      .prefault({}), // parsed: each field takes its own default
    jobs: z
      .object({
        concurrency: z.number().int().min(1).max(64).default(1),
        maxAttempts: z.number().int().min(1).default(5),
        retryBaseSeconds: z.number().positive().default(5),
        /** how long a claimed job is held without a heartbeat before another worker may take it over */
        leaseSeconds: z.number().positive().default(60),
        /**
         * Placement: the models this node's worker runs (a GPU machine the GPU models, with its execution providers
         * under inference); the other models' jobs wait for a worker that serves them. Default: every model its
         * rules name.
         */
        models: z.array(z.string().min(1)).min(1).optional(),
      })
      .strict(),
    /** the operators' dashboard at / (src/server/dashboard) */
    ui: z
      .object({
        /** show PatientName and PatientID on job pages (off: UIDs only) */
        showPatientIdentifiers: z.boolean().default(false),
        /** a link to open a job's study in a viewer; {study} and {series} are replaced by the UIDs */
        viewerUrl: z
          .string()
          .regex(/^https?:\/\//, "an http(s) URL")
          .optional(),
        /** the overview turns red when no study has arrived for this long (0: never) */
        noStudyAlertMinutes: z.number().min(0).default(1440),
        /** a dashboard session ends after this long unused */
        sessionHours: z.number().positive().max(168).default(12),
      })
      .strict()
      .default({ showPatientIdentifiers: false, noStudyAlertMinutes: 1440, sessionHours: 12 }),
    notify: Notify.default({ maxAttempts: 20, retryBaseSeconds: 5, maxRetrySeconds: 3600 }),
    log: z
      .object({ level: z.enum(["error", "warn", "info", "debug"]).default("info"), file: z.string().optional() })
      .strict(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ("pacs" in c.destinations)
      ctx.addIssue({
        code: "custom",
        path: ["destinations", "pacs"],
        message: '"pacs" is the source PACS; give this destination another name',
      });
    const names = new Set<string>();
    for (const [i, r] of (c.routes ?? []).entries()) {
      if (names.has(r.name))
        ctx.addIssue({ code: "custom", path: ["routes", i, "name"], message: `a second rule named "${r.name}"` });
      names.add(r.name);
      if (r.destination !== "pacs" && !(r.destination in c.destinations)) {
        ctx.addIssue({
          code: "custom",
          path: ["routes", i, "destination"],
          message: `"${r.destination}" is neither "pacs" nor one of destinations (${Object.keys(c.destinations).join(", ") || "none"})`,
        });
      }
    }
  });

export type Config = z.infer<typeof ConfigSchema>;
export type RuleConfig = z.infer<typeof Rule>;
export type PacsConfig = z.infer<typeof Pacs>;
export type NotifyConfig = z.infer<typeof Notify>;
