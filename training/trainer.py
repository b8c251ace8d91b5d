"""A seeded, resumable training loop shared by the recipes; on a GPU when torch sees one, else the CPU.

Everything that decides the next step is in the checkpoint: weights, optimiser and learning-rate schedule, the
step count, the losses so far, and the state of both random generators (numpy's, which draws the batches and
augmentations, and torch's). A run stopped at any checkpoint and started again with the same arguments goes on
exactly as if it had not stopped (on the same machine and thread count: floating-point sums follow the threads).
"""
import os
import time

import numpy as np
import torch


def _to(y, device):
    """A target tensor, or a tuple of them (a recipe's label map with its loss masks), on `device`."""
    return tuple(t.to(device) for t in y) if isinstance(y, (tuple, list)) else y.to(device)


def train(model, make_batch, loss_fn, *, steps, seed, lr, checkpoint=None, every=100, log=print, stop_after=None,
          every_seconds=None, log_every=50):
    """Trains `model` for `steps` steps of `make_batch(rng) -> (x, y)` under AdamW with a one-cycle schedule.

    With `checkpoint` (a file path), the state is saved every `every` steps (or, with `every_seconds`, after the
    first step that ends that many seconds after the last save) and at the end, and a run finding the file resumes
    from it. When a checkpoint is written does not change the run: saving draws no random numbers. `y` may be a
    tuple of tensors (a label map and its loss masks). Returns the losses of every step (resumed ones included) and
    the seconds spent training (over every run it resumed). `stop_after` ends the run after that step, as an
    interruption would (for tests)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    # a GPU when there is one; the model comes back to the CPU at the end, for export and evaluation
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    losses, start, before = [], 0, 0.0
    if checkpoint and os.path.exists(checkpoint):
        state = torch.load(checkpoint, map_location=device)
        if state["steps"] != steps or state["seed"] != seed:
            raise SystemExit(f"{checkpoint} was made with {state['steps']} steps and seed {state['seed']}: remove it or pass the same")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        rng.bit_generator.state = state["numpy"]
        torch.set_rng_state(state["torch"].cpu())
        losses, start, before = state["losses"], state["step"], state["seconds"]
        log(f"resumed from {checkpoint} at step {start}")

    def save(step):
        tmp = checkpoint + ".tmp"
        torch.save({"step": step, "steps": steps, "seed": seed, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "numpy": rng.bit_generator.state, "torch": torch.get_rng_state(),
                    "losses": losses, "seconds": before + time.time() - t0}, tmp)
        os.replace(tmp, checkpoint)  # a crash while saving leaves the previous checkpoint whole

    t0 = time.time()
    last_save, last_log = t0, (t0, start)
    model.train()
    for step in range(start, steps):
        x, y = make_batch(rng)
        loss = loss_fn(model(x.to(device)), _to(y, device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss))
        done = step + 1
        now = time.time()
        due = now - last_save >= every_seconds if every_seconds else done % every == 0
        if checkpoint and (due or done == steps or done == stop_after):
            save(done)
            last_save = now
        if done % log_every == 0 or done == steps:
            per_step = (now - last_log[0]) / max(1, done - last_log[1])
            log(f"step {done}/{steps} loss {np.mean(losses[-log_every:]):.4f} ({now - t0:.0f} s, {per_step:.2f} s/step)")
            last_log = (now, done)
        if done == stop_after:
            break
    model.eval().to("cpu")
    return losses, before + time.time() - t0
