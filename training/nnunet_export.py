"""Exports a trained nnU-Net v2 model folder to ONNX, one file per fold, for `delineate import nnunet`.

nnU-Net itself is not needed (nor installable here): the two network classes nnU-Net v2 plans (PlainConvUNet and
ResidualEncoderUNet from dynamic_network_architectures) are rebuilt below with the same module names, so the
checkpoint's `network_weights` load strictly. Written from the architecture as nnU-Net documents it, not copied.

    /usr/bin/python3 training/nnunet_export.py --folder MODEL --configuration 3d_fullres --folds 0,1 \
        --checkpoint checkpoint_final.pth --out OUTDIR

writes OUTDIR/fold_K.onnx (opset 17, input "image" [n, 1, (z,) y, x], output "logits", dynamic batch and spatial
axes) and prints one JSON object on stdout: what the TypeScript importer needs to write model.json.

The decoder keeps nnU-Net's transposed convolutions: replacing them by upsampling + convolution would change the
function the weights were trained for, so an imported 3D model cannot run on onnxruntime-node's WebGPU provider
(src/inference/session.ts skips it there with a log line); CPU and CUDA run it.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exact_norm import with_two_level_norms  # noqa: E402


def alias_numpy_core():
    """Checkpoints pickled under numpy 2 name `numpy._core.multiarray.scalar`; numpy 1.x calls that module
    `numpy.core`. Aliasing the two module names lets the stock unpickler resolve either spelling."""
    try:
        import numpy._core.multiarray  # noqa: F401  (numpy 2: nothing to do)
    except ImportError:
        import numpy.core
        import numpy.core.multiarray
        sys.modules.setdefault("numpy._core", numpy.core)
        sys.modules.setdefault("numpy._core.multiarray", numpy.core.multiarray)


def load_checkpoint(path):
    alias_numpy_core()
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:  # torch < 1.13 has no weights_only; 1.13 loads everything by default anyway
        return torch.load(path, map_location="cpu")


# ---- plans ---------------------------------------------------------------------------------------------------

def resolve_configuration(plans, name):
    """`inherits_from` chains (nnunetv2/utilities/plans_handling/plans_handler.py:231-263): the child's keys win."""
    configs = plans["configurations"]
    if name not in configs:
        raise SystemExit(f"configuration {name!r} is not in plans.json (it has {', '.join(configs)})")
    conf = dict(configs[name])
    seen = {name}
    while "inherits_from" in conf:
        parent = conf.pop("inherits_from")
        if parent in seen:
            raise SystemExit(f"plans.json: configuration inheritance loops through {parent!r}")
        seen.add(parent)
        merged = dict(configs[parent])
        merged.update(conf)
        conf = merged
    return conf


def architecture(conf, plans):
    """The network class and its keyword arguments: the nnU-Net >= 2.3 `architecture` block as it is, or the older
    layout converted as plans_handler.py:36-97 converts it."""
    if "architecture" in conf:
        a = conf["architecture"]
        return a["network_class_name"].split(".")[-1], dict(a["arch_kwargs"])
    dims = len(conf["patch_size"])
    n_stages = len(conf["conv_kernel_sizes"])
    cls = conf["UNet_class_name"].split(".")[-1]
    base, cap = conf["UNet_base_num_features"], conf["unet_max_num_features"]
    kw = {
        "n_stages": n_stages,
        "features_per_stage": [min(base * 2**i, cap) for i in range(n_stages)],
        "conv_op": f"torch.nn.modules.conv.Conv{dims}d",
        "kernel_sizes": conf["conv_kernel_sizes"],
        "strides": conf["pool_op_kernel_sizes"],
        "n_conv_per_stage_decoder": conf["n_conv_per_stage_decoder"],
        "conv_bias": True,
        "norm_op": f"torch.nn.modules.instancenorm.InstanceNorm{dims}d",
        "norm_op_kwargs": {"eps": 1e-5, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    }
    kw["n_blocks_per_stage" if cls == "ResidualEncoderUNet" else "n_conv_per_stage"] = conf["n_conv_per_stage_encoder"]
    return cls, kw


# ---- network (module names as dynamic_network_architectures 0.4 names them) ------------------------------------

def as_list(v, dims):
    return list(v) if isinstance(v, (list, tuple)) else [v] * dims


class Ops:
    """conv / norm / nonlinearity factories from the plans' arch_kwargs."""

    def __init__(self, kw):
        self.dims = 3 if kw["conv_op"].endswith("3d") else 2
        self.conv = nn.Conv3d if self.dims == 3 else nn.Conv2d
        self.tconv = nn.ConvTranspose3d if self.dims == 3 else nn.ConvTranspose2d
        self.avgpool = nn.AvgPool3d if self.dims == 3 else nn.AvgPool2d
        norm = kw.get("norm_op") or ""
        self.norm_kwargs = dict(kw.get("norm_op_kwargs") or {})
        if "InstanceNorm" in norm:
            self.norm = nn.InstanceNorm3d if self.dims == 3 else nn.InstanceNorm2d
        elif "BatchNorm" in norm:
            self.norm = nn.BatchNorm3d if self.dims == 3 else nn.BatchNorm2d
        elif not norm:
            self.norm = None
        else:
            raise SystemExit(f"unsupported norm_op {norm}")
        nonlin = (kw.get("nonlin") or "").split(".")[-1]
        nk = dict(kw.get("nonlin_kwargs") or {})
        nk.pop("inplace", None)
        if nonlin == "LeakyReLU":
            self.nonlin = lambda: nn.LeakyReLU(negative_slope=nk.get("negative_slope", 0.01))
        elif nonlin == "ReLU":
            self.nonlin = nn.ReLU
        elif not nonlin:
            self.nonlin = None
        else:
            raise SystemExit(f"unsupported nonlin {nonlin}")
        self.bias = bool(kw.get("conv_bias", False))


class ConvDropoutNormReLU(nn.Module):
    """conv -> (dropout: none at inference) -> norm -> nonlinearity; attribute names `conv`, `norm`, `nonlin`."""

    def __init__(self, ops, cin, cout, kernel, stride, bias, nonlin=True):
        super().__init__()
        kernel = as_list(kernel, ops.dims)
        self.conv = ops.conv(cin, cout, kernel, as_list(stride, ops.dims), padding=[(k - 1) // 2 for k in kernel],
                             bias=bias)
        self.norm = ops.norm(cout, **ops.norm_kwargs) if ops.norm else nn.Identity()
        self.nonlin = ops.nonlin() if (nonlin and ops.nonlin) else nn.Identity()

    def forward(self, x):
        return self.nonlin(self.norm(self.conv(x)))


class StackedConvBlocks(nn.Module):
    def __init__(self, ops, n, cin, cout, kernel, first_stride):
        super().__init__()
        self.convs = nn.Sequential(*[ConvDropoutNormReLU(ops, cin if i == 0 else cout, cout, kernel,
                                                         first_stride if i == 0 else 1, ops.bias) for i in range(n)])

    def forward(self, x):
        return self.convs(x)


class BasicBlockD(nn.Module):
    """Residual block: conv1 (strided) -> conv2 (no nonlinearity), plus a skip that average-pools when strided and
    projects with a bias-free 1x1 conv + norm when the channel count changes; nonlinearity after the sum."""

    def __init__(self, ops, cin, cout, kernel, stride):
        super().__init__()
        self.conv1 = ConvDropoutNormReLU(ops, cin, cout, kernel, stride, ops.bias)
        self.conv2 = ConvDropoutNormReLU(ops, cout, cout, kernel, 1, ops.bias, nonlin=False)
        self.nonlin2 = ops.nonlin() if ops.nonlin else nn.Identity()
        stride = as_list(stride, ops.dims)
        strided = any(s != 1 for s in stride)
        if strided or cin != cout:
            skip = []
            if strided:
                skip.append(ops.avgpool(stride, stride))
            if cin != cout:
                skip.append(ConvDropoutNormReLU(ops, cin, cout, 1, 1, False, nonlin=False))
            self.skip = nn.Sequential(*skip)
        else:
            self.skip = nn.Identity()

    def forward(self, x):
        return self.nonlin2(self.conv2(self.conv1(x)) + self.skip(x))


class StackedResidualBlocks(nn.Module):
    def __init__(self, ops, n, cin, cout, kernel, first_stride):
        super().__init__()
        self.blocks = nn.Sequential(*[BasicBlockD(ops, cin if i == 0 else cout, cout, kernel,
                                                  first_stride if i == 0 else 1) for i in range(n)])

    def forward(self, x):
        return self.blocks(x)


class Encoder(nn.Module):
    def __init__(self, ops, kw, residual):
        super().__init__()
        feats, kernels, strides = kw["features_per_stage"], kw["kernel_sizes"], kw["strides"]
        n = kw["n_stages"]
        cin = kw.get("input_channels", 1)
        if residual:
            block = str(kw.get("block", "BasicBlockD")).split(".")[-1].strip("'>")
            if block != "BasicBlockD":
                raise SystemExit(f"ResidualEncoderUNet with {block} blocks is not supported (BasicBlockD is)")
            stem = kw.get("stem_channels") or feats[0]
            self.stem = StackedConvBlocks(ops, 1, cin, stem, kernels[0], 1)
            cin = stem
            blocks = as_list(kw["n_blocks_per_stage"], n)
            self.stages = nn.Sequential(*[StackedResidualBlocks(ops, blocks[s], cin if s == 0 else feats[s - 1],
                                                                feats[s], kernels[s], strides[s]) for s in range(n)])
        else:
            self.stem = None
            convs = as_list(kw["n_conv_per_stage"], n)
            self.stages = nn.Sequential(*[nn.Sequential(StackedConvBlocks(ops, convs[s], cin if s == 0 else feats[s - 1],
                                                                          feats[s], kernels[s], strides[s]))
                                          for s in range(n)])

    def forward(self, x):
        if self.stem is not None:
            x = self.stem(x)
        skips = []
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        return skips


class Decoder(nn.Module):
    """Transposed conv up, concatenate the skip, conv blocks; only the last (full-resolution) seg head is used at
    inference (deep supervision off), but every head is built so the state dict loads strictly."""

    def __init__(self, ops, kw, num_classes):
        super().__init__()
        feats, kernels, strides = kw["features_per_stage"], kw["kernel_sizes"], kw["strides"]
        n = kw["n_stages"]
        convs = as_list(kw["n_conv_per_stage_decoder"], n - 1)
        self.transpconvs, self.stages, self.seg_layers = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for s in range(1, n):
            below, skip = feats[-s], feats[-(s + 1)]
            stride = as_list(strides[-s], ops.dims)
            self.transpconvs.append(ops.tconv(below, skip, stride, stride, bias=ops.bias))
            self.stages.append(StackedConvBlocks(ops, convs[s - 1], 2 * skip, skip, kernels[-(s + 1)], 1))
            self.seg_layers.append(ops.conv(skip, num_classes, 1, 1, 0, bias=True))

    def forward(self, skips):
        x = skips[-1]
        for s, (up, stage) in enumerate(zip(self.transpconvs, self.stages)):
            x = stage(torch.cat((up(x), skips[-(s + 2)]), 1))
        return self.seg_layers[-1](x)


class UNet(nn.Module):
    def __init__(self, cls, kw, num_classes):
        super().__init__()
        if cls not in ("PlainConvUNet", "ResidualEncoderUNet"):
            raise SystemExit(f"network class {cls} is not supported (PlainConvUNet and ResidualEncoderUNet are)")
        ops = Ops(kw)
        self.dims = ops.dims
        self.encoder = Encoder(ops, kw, cls == "ResidualEncoderUNet")
        self.decoder = Decoder(ops, kw, num_classes)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def own_weights(state):
    """network_weights is state_dict() of the real module, where every tensor also appears under aliases sharing its
    storage: `...all_modules.N.*` (the same conv / norm inside a Sequential) and `decoder.encoder.*` (the decoder
    keeps a reference to the encoder). Only the canonical names are loaded."""
    return {k: v for k, v in state.items() if ".all_modules." not in k and not k.startswith("decoder.encoder.")}


# ---- main ----------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", required=True)
    ap.add_argument("--configuration", default="3d_fullres")
    ap.add_argument("--folds", default="0")
    ap.add_argument("--checkpoint", default="checkpoint_final.pth")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)

    folder, out = Path(args.folder), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plans = json.loads((folder / "plans.json").read_text())
    dataset = json.loads((folder / "dataset.json").read_text())
    conf = resolve_configuration(plans, args.configuration)
    cls, kw = architecture(conf, plans)
    # an "ignore" label is not a network output (nnU-Net's LabelManager: it is the highest value, left out of the
    # segmentation heads)
    labels = {k: v for k, v in dataset["labels"].items() if k != "ignore"}
    if any(isinstance(v, (list, tuple)) for v in labels.values()):
        raise SystemExit("region-based models (labels with lists of values) are not supported")
    num_classes = len(labels)
    channels = dataset.get("channel_names", dataset.get("modality", {"0": "?"}))
    kw["input_channels"] = len(channels)
    if len(channels) != 1:
        raise SystemExit(f"only one-channel models are supported; this one has {len(channels)}: {channels}")

    folds = [f.strip() for f in args.folds.split(",") if f.strip()]
    files, mirror_axes, trainer = [], None, None
    for fold in folds:
        ck_path = folder / f"fold_{fold}" / args.checkpoint
        ck = load_checkpoint(ck_path)
        trainer = ck.get("trainer_name")
        ck_conf = (ck.get("init_args") or {}).get("configuration")
        if ck_conf and ck_conf != args.configuration:
            raise SystemExit(f"{ck_path} was trained for configuration {ck_conf}, not {args.configuration}")
        axes = ck.get("inference_allowed_mirroring_axes")
        axes = list(axes) if axes is not None else []
        if mirror_axes is not None and axes != mirror_axes:
            raise SystemExit(f"folds disagree on inference_allowed_mirroring_axes: {mirror_axes} vs {axes}")
        mirror_axes = axes
        net = UNet(cls, kw, num_classes)
        net.load_state_dict(own_weights(ck["network_weights"]), strict=True)
        net.eval()
        # onnxruntime's InstanceNormalization sums a channel in float32: exported as two-level reductions instead
        net = with_two_level_norms(net)
        patch = conf["patch_size"]
        example = torch.zeros(1, len(channels), *patch)
        spatial = {i + 2: n for i, n in enumerate(["z", "y", "x"][-len(patch):])}
        name = f"fold_{fold}.onnx"
        with torch.no_grad():
            torch.onnx.export(net, example, str(out / name), opset_version=17, input_names=["image"],
                              output_names=["logits"],
                              dynamic_axes={"image": {0: "n", **spatial}, "logits": {0: "n", **spatial}})
        files.append(name)

    props = plans.get("foreground_intensity_properties_per_channel", {}).get("0")
    print(json.dumps({
        "network": cls,
        "dimensions": len(conf["patch_size"]),
        "patchSize": conf["patch_size"],
        "spacing": conf["spacing"],
        "transposeForward": plans["transpose_forward"],
        "transposeBackward": plans["transpose_backward"],
        "normalization": conf["normalization_schemes"][0],
        "useMaskForNorm": bool(conf["use_mask_for_norm"][0]),
        "intensityProperties": props,
        "resamplingFunctions": [conf.get("resampling_fn_data"), conf.get("resampling_fn_probabilities")],
        "resamplingData": conf.get("resampling_fn_data_kwargs"),
        "resamplingProbabilities": conf.get("resampling_fn_probabilities_kwargs"),
        "mirrorAxes": mirror_axes or [],
        "labels": labels,
        "channels": channels,
        "files": files,
        "trainer": trainer,
        "plansName": plans.get("plans_name"),
        "datasetName": plans.get("dataset_name"),
        "strides": kw["strides"],
    }))


if __name__ == "__main__":
    main()
