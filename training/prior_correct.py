"""Undoes the organ weighting of the cross-entropy (`--organ-weight W`) in a trained network's output.

Cross-entropy with weight w_c on voxels of class c is minimised, for a voxel whose true class probabilities are q, by
p_c ∝ w_c q_c: an organ-weighted network over-calls the organs (on four training patients, phase 4's organ was larger
than its contour in 19 of 22 organ-patient pairs; training/reports/hn-oar-phase4-decision.json). Dividing by the weights again, q_c ∝ p_c / w_c, is subtracting ln w_c from
the organ logits, i.e. from the bias of the last 1×1×1 convolution: the network's graph is unchanged and the
engine needs nothing new. (The Dice term of the loss is not weighted, so this is the cross-entropy's share; whether
it helps was measured on training patients, training/README.md.)

    /usr/bin/python3 training/prior_correct.py --checkpoint training/checkpoints/hn-oar-4/last.pt \\
        --organ-weight 10 --out training/checkpoints/hn-oar-4/corrected.pt
"""
import argparse
import math

import torch

from train_hn_oar import EXTERNAL


def prior_corrected(state_dict, organ_weight):
    """A copy of the network's weights with ln(organ_weight) taken off the organ classes' output bias."""
    out = dict(state_dict)
    bias = out["head.bias"].clone()
    bias[1:EXTERNAL] -= math.log(organ_weight)  # classes 1..7 are the organs; background and External kept weight 1
    out["head.bias"] = bias
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="a training checkpoint (train_hn_oar.py)")
    ap.add_argument("--organ-weight", type=float, required=True, help="the --organ-weight it was trained with")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    state = torch.load(a.checkpoint, map_location="cpu")
    kept = {k: state[k] for k in ("step", "steps", "seed", "seconds") if k in state}
    torch.save({"model": prior_corrected(state["model"], a.organ_weight), **kept,
                "priorCorrected": {"from": a.checkpoint, "organWeight": a.organ_weight}}, a.out)
    print(f"{a.out}: {a.checkpoint} with ln({a.organ_weight:g}) taken off the organ logits")


if __name__ == "__main__":
    main()
