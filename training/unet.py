"""U-Net family for Delineate's training recipes (PyTorch; Debian's python3-torch, CPU or GPU).

- UNet(dims=2): the U-Net of Ronneberger, Fischer and Brox (MICCAI 2015): a contracting path of two 3x3
  convolutions and 2x2 max pooling per level, doubling the features; an expanding path that upsamples, halves the
  features, concatenates the skip connection and convolves twice; a 1x1 convolution to the classes. Convolutions are
  padded (output size = input size), and each up-convolution is a 1x1 convolution followed by nearest upsampling
  rather than a transposed convolution, so exports also run on onnxruntime's WebGPU provider.
- UNet(dims=3): the same in 3D (Cicek et al., MICCAI 2016), with instance normalisation.
- VNet: a residual V-Net-style variant (Milletari et al., 3DV 2016): each stage adds its input to its convolutions'
  output; down by strided convolution, up by upsampling + convolution; PReLU; trained with Dice loss.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from exact_norm import with_two_level_norms


def _conv(dims):
    return nn.Conv2d if dims == 2 else nn.Conv3d


def _norm(dims):
    return nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d


class ConvBlock(nn.Sequential):
    """Two 3x3(x3) convolutions, each with instance normalisation and leaky ReLU."""

    def __init__(self, dims, cin, cout):
        conv, norm = _conv(dims), _norm(dims)
        super().__init__(
            conv(cin, cout, 3, padding=1), norm(cout, affine=True), nn.LeakyReLU(0.01, inplace=True),
            conv(cout, cout, 3, padding=1), norm(cout, affine=True), nn.LeakyReLU(0.01, inplace=True),
        )


class UNet(nn.Module):
    def __init__(self, dims=2, in_channels=1, classes=2, features=64, depth=4):
        super().__init__()
        self.dims = dims
        conv = _conv(dims)
        widths = [features * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([ConvBlock(dims, in_channels if i == 0 else widths[i - 1], widths[i]) for i in range(depth + 1)])
        self.reduce = nn.ModuleList([conv(widths[i + 1], widths[i], 1) for i in range(depth)])
        self.up = nn.ModuleList([ConvBlock(dims, 2 * widths[i], widths[i]) for i in range(depth)])
        self.head = conv(widths[0], classes, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else (F.max_pool2d if self.dims == 2 else F.max_pool3d)(x, 2))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(len(self.up))):
            # the 1x1 convolution before the nearest upsampling, not after: the two commute (each output voxel is the
            # same weighted sum of the same input voxel), and this way the convolution runs on 8x (4x in 2D) fewer
            # voxels and the upsampling moves half the channels
            x = F.interpolate(self.reduce[i](x), scale_factor=2.0, mode="nearest")
            x = self.up[i](torch.cat([skips[i], x], 1))
        return self.head(x)


class ResStage(nn.Module):
    """n 5x5x5 convolutions with PReLU whose output is added to the stage's input (V-Net). One PReLU slope per layer:
    torch 1.13 exports a per-channel slope that onnxruntime broadcasts along the last axis instead of the channels."""

    def __init__(self, channels, n):
        super().__init__()
        # instance normalisation after each convolution (later V-Net implementations add one): without it the
        # residual sums grow to ~1e5 in a few stages
        self.convs = nn.Sequential(*[m for _ in range(n) for m in (nn.Conv3d(channels, channels, 5, padding=2), nn.InstanceNorm3d(channels, affine=True), nn.PReLU())])

    def forward(self, x):
        return x + self.convs(x)


class VNet(nn.Module):
    def __init__(self, in_channels=1, classes=2, features=16, depth=3):
        super().__init__()
        widths = [features * 2 ** i for i in range(depth + 1)]
        self.stem = nn.Conv3d(in_channels, widths[0], 5, padding=2)
        self.enc = nn.ModuleList([ResStage(widths[i], min(i + 1, 3)) for i in range(depth + 1)])
        self.downs = nn.ModuleList([nn.Sequential(nn.Conv3d(widths[i], widths[i + 1], 2, stride=2), nn.PReLU()) for i in range(depth)])
        self.ups = nn.ModuleList([nn.Sequential(nn.Conv3d(widths[i + 1], widths[i], 1), nn.PReLU()) for i in range(depth)])
        self.fuse = nn.ModuleList([nn.Conv3d(2 * widths[i], widths[i], 1) for i in range(depth)])
        self.dec = nn.ModuleList([ResStage(widths[i], min(i + 1, 3)) for i in range(depth)])
        self.head = nn.Conv3d(widths[0], classes, 1)

    def forward(self, x):
        x = self.enc[0](self.stem(x))
        skips = [x]
        for i, down in enumerate(self.downs):
            x = self.enc[i + 1](down(x))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(len(self.ups))):
            x = self.ups[i](F.interpolate(x, scale_factor=2.0, mode="nearest"))
            x = self.dec[i](self.fuse[i](torch.cat([skips[i], x], 1)))
        return self.head(x)


def soft_dice_loss(logits, target, eps=1e-5):
    """1 - mean soft Dice over the foreground classes (Milletari et al. 2016's objective, multi-class)."""
    probs = torch.softmax(logits, 1)
    onehot = F.one_hot(target, logits.shape[1]).movedim(-1, 1).float()
    axes = tuple(range(2, logits.ndim))
    inter = (probs * onehot).sum(axes)
    denom = probs.sum(axes) + onehot.sum(axes)
    dice = (2 * inter + eps) / (denom + eps)
    return 1 - dice[:, 1:].mean()


def dice_ce_loss(logits, target):
    """Cross-entropy plus soft Dice, as nnU-Net trains."""
    return F.cross_entropy(logits, target) + soft_dice_loss(logits, target)


def elastic_deform(image, label, rng, grid=3, sigma=10.0):
    """The U-Net paper's augmentation: displacements drawn on a coarse grid (grid x grid points, normal with
    `sigma` pixels), interpolated smoothly (cubic) to every pixel; the image resampled cubically, the labels by
    nearest neighbour so they stay labels. 2D arrays (H, W) or 3D (D, H, W)."""
    import scipy.ndimage as ndi

    shape = image.shape
    coords = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    moved = []
    for axis, c in enumerate(coords):
        coarse = rng.normal(0.0, sigma, size=(grid,) * len(shape))
        field = ndi.zoom(coarse, [n / grid for n in shape], order=3, mode="nearest")[tuple(slice(0, n) for n in shape)]
        moved.append(c + field)
    out_image = ndi.map_coordinates(image, moved, order=3, mode="reflect")
    out_label = ndi.map_coordinates(label, moved, order=0, mode="reflect")
    return out_image.astype(image.dtype), out_label.astype(label.dtype)


def export_onnx(model, example, path):
    """ONNX opset 17 with dynamic batch and spatial axes; input "image", output "logits" (the manifest's names).
    Instance normalisation is written as two-level reductions (training/exact_norm.py): onnxruntime's own kernel
    sums a whole channel in float32 and is off by up to 2e-3 in probability on a CT tile."""
    model = with_two_level_norms(model)
    spatial = {i: a for i, a in zip(range(2, example.ndim), ["z", "y", "x"][-(example.ndim - 2):])}
    model.eval()
    torch.onnx.export(model, example, path, opset_version=17, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "n", **spatial}, "logits": {0: "n", **spatial}})
