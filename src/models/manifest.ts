import { z } from "zod";
import type { CodedConcept } from "../dicom/codes.js";
import { NnunetConfigSchema } from "./nnunetConfig.js";

/** A label's code as the manifest writes it: the one CodedConcept type (src/dicom/codes.ts), checked. */
const Code = z
  .object({ code: z.string().min(1).max(64), scheme: z.string().min(1).max(16), meaning: z.string().min(1).max(64) })
  .strict() satisfies z.ZodType<CodedConcept>;

export type { CodedConcept };

/** `models/<id>/model.json`: everything needed to run the network without reading its training code. */
export const ManifestSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, "lower-case letters, digits and '-'"),
    version: z.string().regex(/^\d+\.\d+\.\d+$/, "semantic version x.y.z"),
    name: z.string().min(1).max(64),
    description: z.string().default(""),
    /** the series it takes; "OT" for other images (e.g. microscopy wrapped as Secondary Capture) */
    modality: z.enum(["CT", "MR", "OT"]),
    /** 3: the network takes volumes; 2: it takes one slice at a time (the volume's slices are not resampled) */
    dimensions: z.union([z.literal(2), z.literal(3)]),
    files: z.array(z.string().regex(/^[^/\\]+\.onnx$/, "an .onnx file inside the package")).min(1),
    input: z
      .object({
        name: z.string().min(1),
        /** [N, C, Z, Y, X] for 3D models, [N, C, Y, X] for 2D: x fastest, as DICOM pixel data */
        layout: z.enum(["NCZYX", "NCYX"]),
        /** target voxel spacing in mm, [x, y, z] (z is ignored by 2D models) */
        spacing: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
        /** every spatial size is padded up to a multiple of this (2^poolings) */
        sizeMultiple: z.number().int().positive(),
        padding: z.enum(["edge", "constant"]),
        /**
         * the patient direction the tensor's x, y and z axes increase toward, e.g. "LPS" (DICOM's axial order) or "RAS";
         * the volume is permuted and flipped to it (whole voxels, undone exactly on the labels). Absent: the series'
         * own voxel order (rows, columns, slices).
         */
        orientation: z
          .string()
          .regex(/^[LRPASI]{3}$/, "three letters from L/R, P/A, S/I")
          .refine(
            (c) => new Set([...c].map((l) => "LRPASI".indexOf(l) >> 1)).size === 3,
            "one letter for each of the axes L/R, P/A and S/I",
          )
          .optional(),
      })
      .strict(),
    /** intensity normalisation, on the model grid: CT with the training set's fixed statistics, or per image */
    normalization: z.discriminatedUnion("kind", [
      z
        .object({
          kind: z.literal("ct-clip-zscore"),
          clip: z.tuple([z.number(), z.number()]),
          mean: z.number(),
          std: z.number().positive(),
        })
        .strict(),
      /** per image; with nonzeroMask, statistics over voxels ≠ 0 and those outside set to 0 (nnU-Net's use_mask_for_norm) */
      z.object({ kind: z.literal("zscore"), nonzeroMask: z.boolean().default(false) }).strict(),
      /** per image: clip to its own percentiles, then z-score */
      z
        .object({
          kind: z.literal("percentile"),
          lower: z.number().min(0).max(100).default(0.5),
          upper: z.number().min(0).max(100).default(99.5),
        })
        .strict(),
    ]),
    output: z.object({ name: z.string().min(1), activation: z.enum(["softmax"]) }).strict(),
    /** how the network is run over the volume (src/inference/slidingWindow.ts); several ONNX files are folds, averaged as logits */
    inference: z
      .object({
        /** tile size [x, y, z] in voxels at the model spacing ([x, y, 1] for 2D); absent: the whole (padded) volume, or slice, in one pass */
        patchSize: z
          .tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()])
          .optional(),
        /** fraction of a patch that neighbouring tiles share (nnU-Net: 0.5) */
        overlap: z.number().min(0).max(0.9).default(0.5),
        blend: z.enum(["gaussian", "constant"]).default("gaussian"),
        /** test-time mirroring: every combination of these axes is run and the logits averaged */
        mirrorAxes: z.array(z.enum(["x", "y", "z"])).default([]),
        /**
         * an axis at most this fraction longer than the patch is run as one tile of its whole length instead of two
         * that nearly coincide (nnU-Net would place a second tile shifted by the excess): same network, a little more
         * context, half the work on that axis. 0: tiles exactly as nnU-Net places them.
         */
        stretch: z.number().min(0).max(0.5).default(0.1),
        /** tiles (2D: slices) per network call; absent: 8 for a 2D model, 1 for a 3D one (fewer if the ONNX input's batch axis is fixed) */
        batchSize: z.number().int().positive().max(256).optional(),
        /**
         * storage of the blended logits while tiles overlap: "float32" (exact, the default) or "float16" (half the
         * memory, for models with many classes; labels may change where two classes' probabilities are within ~1e-3)
         */
        accumulator: z.enum(["float32", "float16"]).default("float32"),
        /**
         * when the network ends in a 1×1(×1) convolution, run it without that convolution, blend its features and
         * apply the convolution per finished row (src/inference/headSplit.ts): the same logits to float32 rounding,
         * with the features' memory instead of every class's. false: run the network whole (labels exactly as before).
         * The nnU-Net path (preprocessing "nnunet") always runs it whole.
         */
        headSplit: z.boolean().default(true),
      })
      .strict()
      .default({
        overlap: 0.5,
        blend: "gaussian",
        mirrorAxes: [],
        stretch: 0.1,
        accumulator: "float32",
        headSplit: true,
      }),
    labels: z
      .array(
        z
          .object({
            value: z.number().int().min(1).max(255),
            name: z.string().min(1).max(64),
            color: z.tuple([
              z.number().int().min(0).max(255),
              z.number().int().min(0).max(255),
              z.number().int().min(0).max(255),
            ]),
            category: Code,
            type: Code,
            /** for paired organs: (7771000, SCT, "Left"), (24028007, SCT, "Right"), (51440002, SCT, "Right and left") */
            laterality: Code.optional(),
            rtInterpretedType: z.enum([
              "EXTERNAL",
              "ORGAN",
              "OAR",
              "PTV",
              "CTV",
              "GTV",
              "AVOIDANCE",
              "CAVITY",
              "SUPPORT",
              "CONTROL",
            ]),
          })
          .strict(),
      )
      .min(1),
    /** on the source grid, in 3D, 6-connected; `true` for every label or a list of label values */
    postprocessing: z
      .object({
        /** keep only the label's largest component (specks and detached pieces go) */
        keepLargestComponent: z.union([z.boolean(), z.array(z.number().int())]).default(false),
        /** fill background cavities enclosed by the label alone */
        fillHoles: z.union([z.boolean(), z.array(z.number().int())]).default(false),
        /** drop components smaller than this many mL (0: keep all) */
        minComponentMl: z.number().min(0).default(0),
        /**
         * CT only: the label that is the body outline (External) is made by a classical step on the HU
         * (src/inference/external.ts) instead of, or within, the network's output: threshold after smoothing,
         * in-plane opening against the table and immobilisation shells, largest 3D component, holes filled per slice.
         */
        external: z
          .object({
            label: z.number().int().min(1).max(255),
            thresholdHu: z.number().default(-500),
            smoothMm: z.number().min(0).max(10).default(1),
            openingMm: z.number().min(0).max(30).default(5),
            /** a slice's pieces other than its largest smaller than this (mm²) are dropped: islands, not anatomy */
            minPieceMm2: z.number().min(0).default(100),
            combine: z.enum(["replace", "intersect"]).default("replace"),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({ keepLargestComponent: false, fillHoles: false, minComponentMl: 0 }),
    /**
     * How the RT Structure Set is drawn from the label map. `externalIncludes`: which other labels' voxels the EXTERNAL
     * ROI also covers ("all": every other label). A label map gives each voxel one label, so an External label alone
     * has a hole wherever an organ is; a planning system expects the body outline to contain the organs. Absent or
     * "none": each ROI is its own label only. The SEG and the SR keep the label map as it is.
     */
    rtstruct: z
      .object({ externalIncludes: z.union([z.enum(["none", "all"]), z.array(z.number().int())]).default("none") })
      .strict()
      .default({ externalIncludes: "none" }),
    /** what the model's results are good for; routing rules choose what a site writes */
    outputs: z.array(z.enum(["seg", "sr", "rtstruct", "sc"])).min(1),
    training: z.string().optional(),
    /** "nnunet": nnU-Net v2's own preprocessing and sliding window (src/inference/nnunet/), from the `nnunet` block */
    preprocessing: z.enum(["delineate", "nnunet"]).default("delineate"),
    nnunet: NnunetConfigSchema.optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    const values = m.labels.map((l) => l.value);
    if (new Set(values).size !== values.length)
      ctx.addIssue({ code: "custom", path: ["labels"], message: "label values must be unique" });
    if ((m.dimensions === 2) !== (m.input.layout === "NCYX")) {
      ctx.addIssue({
        code: "custom",
        path: ["input", "layout"],
        message: `a ${m.dimensions}D model takes ${m.dimensions === 2 ? "NCYX" : "NCZYX"} tensors`,
      });
    }
    const external = m.postprocessing.external;
    if (external && !values.includes(external.label))
      ctx.addIssue({
        code: "custom",
        path: ["postprocessing", "external", "label"],
        message: `label ${external.label} is not one of the model's labels`,
      });
    if (external && m.modality !== "CT")
      ctx.addIssue({
        code: "custom",
        path: ["postprocessing", "external"],
        message: "the External step reads HU: CT only",
      });
    const includes = m.rtstruct.externalIncludes;
    const externals = m.labels.filter((l) => l.rtInterpretedType === "EXTERNAL").length;
    if (includes !== "none" && externals !== 1)
      ctx.addIssue({
        code: "custom",
        path: ["rtstruct", "externalIncludes"],
        message: `needs exactly one label with rtInterpretedType EXTERNAL (the model has ${externals})`,
      });
    for (const v of Array.isArray(includes) ? includes : [])
      if (!values.includes(v))
        ctx.addIssue({
          code: "custom",
          path: ["rtstruct", "externalIncludes"],
          message: `label ${v} is not one of the model's labels`,
        });
    if ((m.preprocessing === "nnunet") !== (m.nnunet !== undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["nnunet"],
        message: 'an "nnunet" block goes with "preprocessing": "nnunet"',
      });
    }
    if (m.dimensions === 2 && m.inference.patchSize && m.inference.patchSize[2] !== 1) {
      ctx.addIssue({ code: "custom", path: ["inference", "patchSize"], message: "a 2D model's patch is [x, y, 1]" });
    }
    if (m.inference.patchSize?.some((n, a) => !(m.dimensions === 2 && a === 2) && n % m.input.sizeMultiple !== 0)) {
      ctx.addIssue({
        code: "custom",
        path: ["inference", "patchSize"],
        message: `every patch size must be a multiple of input.sizeMultiple (${m.input.sizeMultiple})`,
      });
    }
  });

export type ModelManifest = z.infer<typeof ManifestSchema>;
export type ModelLabel = ModelManifest["labels"][number];
