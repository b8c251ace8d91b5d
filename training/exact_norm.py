"""Instance normalisation as exported to ONNX: its statistics reduced in two levels, so onnxruntime computes them to
float32's precision.

onnxruntime's CPU InstanceNormalization (core/providers/cpu/nn/instance_norm.cc) takes each channel's mean and
squared norm with one Eigen reduction over all its voxels: 16 float32 running sums of 2 M values each for a 128³
tile. A CT tile's air gives runs of identical activations whose roundings add up instead of cancelling, so the
statistics are off by ~1e-3 of their size and the logits by up to 9e-3 (probabilities 2e-3) where PyTorch is within
1e-5 of float64 (bench/SPEED.md, `bench:pytorch`). Reducing over the last axes first (one row or slice, ≤ 16 K
values) and then over the first (≤ a few hundred row means) keeps every float32 sum short: the same function, to
1e-5. The module keeps the InstanceNorm's weight and bias, so it is swapped in for export only.
"""
import copy

import torch
from torch import nn


class TwoLevelInstanceNorm(nn.Module):
    def __init__(self, norm):
        super().__init__()
        if norm.track_running_stats:
            raise ValueError("instance normalisation with running statistics is not exported this way")
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps  # None, None without affine

    def forward(self, x):
        inner = tuple(range(3, x.dim()))  # all spatial axes but the first: equal-sized groups, so the mean of means is the mean
        mean = x.mean(inner, keepdim=True).mean(2, keepdim=True)
        d = x - mean
        var = (d * d).mean(inner, keepdim=True).mean(2, keepdim=True)
        if self.weight is None:
            return d / torch.sqrt(var + self.eps)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return d * (self.weight.reshape(shape) / torch.sqrt(var + self.eps)) + self.bias.reshape(shape)


def with_two_level_norms(model):
    """A copy of `model` whose InstanceNorm2d/3d modules are TwoLevelInstanceNorm (the weights are shared)."""
    model = copy.deepcopy(model)

    def swap(m):
        for name, child in m.named_children():
            if isinstance(child, (nn.InstanceNorm2d, nn.InstanceNorm3d)):
                setattr(m, name, TwoLevelInstanceNorm(child))
            else:
                swap(child)

    swap(model)
    return model
