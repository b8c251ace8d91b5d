import { z } from "zod";

const Perm = z
  .tuple([z.number().int().min(0).max(2), z.number().int().min(0).max(2), z.number().int().min(0).max(2)])
  .refine((p) => new Set(p).size === 3, "a permutation of 0, 1, 2");

/**
 * model.json's `nnunet` block for `"preprocessing": "nnunet"`: what nnU-Net v2's predictor reads from plans.json and
 * the checkpoints, in nnU-Net's axis order (the NIfTI voxel axes reversed, then transpose_forward), written by
 * `delineate import nnunet` and run by src/inference/nnunet/.
 */
export const NnunetConfigSchema = z
  .object({
    /** the plans' configuration, e.g. "3d_fullres" or "2d" */
    configuration: z.string().min(1),
    transposeForward: Perm,
    transposeBackward: Perm,
    /** the configuration's spacing (mm, after transpose): 3 values, or 2 for a 2D configuration (axis 0 keeps the image's) */
    spacing: z.array(z.number().positive()).min(2).max(3),
    /** the configuration's patch size in voxels, same axes as spacing */
    patchSize: z.array(z.number().int().positive()).min(2).max(3),
    /** number of network outputs (segmentation heads): the labels plus background */
    classes: z.number().int().min(2),
    normalization: z
      .object({
        scheme: z.enum(["CTNormalization", "ZScoreNormalization", "NoNormalization", "RescaleTo01Normalization"]),
        useMaskForNorm: z.boolean().default(false),
        /** CTNormalization's statistics: plans.json foreground_intensity_properties_per_channel["0"] */
        mean: z.number().default(0),
        std: z.number().default(1),
        percentile_00_5: z.number().default(0),
        percentile_99_5: z.number().default(0),
      })
      .strict(),
    /** resampling_fn_data_kwargs / resampling_fn_probabilities_kwargs */
    resampling: z
      .object({
        dataOrder: z.union([z.literal(1), z.literal(3)]).default(3),
        dataOrderZ: z.literal(0).default(0),
        probabilitiesOrder: z.union([z.literal(1), z.literal(3)]).default(1),
        probabilitiesOrderZ: z.literal(0).default(0),
        forceSeparateZ: z.boolean().nullable().default(null),
      })
      .strict()
      .default({ dataOrder: 3, dataOrderZ: 0, probabilitiesOrder: 1, probabilitiesOrderZ: 0, forceSeparateZ: null }),
    /** the checkpoints' inference_allowed_mirroring_axes (nnU-Net axes after transpose) */
    mirrorAxes: z.array(z.number().int().min(0).max(2)).default([]),
    tileStepSize: z.number().gt(0).max(1).default(0.5),
    /**
     * "float16": the logits are accumulated, divided and resampled in half precision as nnU-Net does on CPU
     * (bit-for-bit its rounding, so its ties and face effects too); "float32": more accurate, differs from nnU-Net
     * in a few voxels per volume (see docs/nnunet.md)
     */
    accumulate: z.enum(["float16", "float32"]).default("float16"),
  })
  .strict();

export type NnunetConfig = z.infer<typeof NnunetConfigSchema>;
