#!/usr/bin/env python3
"""torch_train_step.py — the PyTorch peer of `dojo bench train-step`.

Times whole training steps (zero_grad, forward, cross-entropy, backward,
SGD with momentum 0.9 and weight decay 1e-4, lr 1e-3) of a torchvision video
network on random clips and labels, with the same input shape and number of
threads as dojo, in eager mode or under torch.compile, and prints the median
ms per step, clips/s and the peak resident memory of the process as one JSON
object (or a line of text).

Models: r3d_18, mc3_18, r2plus1d_18 (torchvision.models.video) and r3d_mini,
dojo's configs/models/r3d_mini.yaml (the r3d_18 design, widths 16-128, one
block per stage) built from torchvision's own classes.

Works with Debian's python3-torch (1.13: no torch.compile, reported as
skipped) and with current PyPI torch.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return -1.0


def parse_input(text):
    dims = text.split("x")
    if len(dims) != 5 or not all(d.isdigit() and int(d) > 0 for d in dims) or int(dims[1]) != 3:
        raise argparse.ArgumentTypeError(f"--input '{text}' is not NxCxTxHxW with C = 3")
    return [int(d) for d in dims]


def r3d_mini(num_classes):
    """dojo's r3d_mini: torchvision's VideoResNet with widths 16, 32, 64, 128."""
    import torch.nn as nn
    from torchvision.models.video import resnet as vr

    m = vr.VideoResNet(vr.BasicBlock, [vr.Conv3DSimple] * 4, [1, 1, 1, 1], vr.BasicStem, num_classes=num_classes)
    m.stem = nn.Sequential(
        nn.Conv3d(3, 16, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
        nn.BatchNorm3d(16),
        nn.ReLU(inplace=True),
    )
    m.inplanes = 16
    m.layer1 = m._make_layer(vr.BasicBlock, vr.Conv3DSimple, 16, 1, stride=1)
    m.layer2 = m._make_layer(vr.BasicBlock, vr.Conv3DSimple, 32, 1, stride=2)
    m.layer3 = m._make_layer(vr.BasicBlock, vr.Conv3DSimple, 64, 1, stride=2)
    m.layer4 = m._make_layer(vr.BasicBlock, vr.Conv3DSimple, 128, 1, stride=2)
    m.fc = nn.Linear(128, num_classes)
    return m


def build(name, num_classes):
    from torchvision.models import video

    if name == "r3d_mini":
        return r3d_mini(num_classes)
    if name not in ("r3d_18", "mc3_18", "r2plus1d_18"):
        raise SystemExit(f"torch_train_step.py: error: unknown model '{name}' (r3d_18, mc3_18, r2plus1d_18, r3d_mini)")
    return getattr(video, name)(num_classes=num_classes)


def time_steps(model, opt, x, y, warmup, steps):
    import torch
    import torch.nn.functional as F

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    if not torch.isfinite(loss):
        raise SystemExit("torch_train_step.py: error: the loss is not finite")
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", type=parse_input, default="8x3x8x112x112", help="NxCxTxHxW (default 8x3x8x112x112)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--classes", type=int, default=400)
    ap.add_argument("--mode", choices=("eager", "compile"), default="eager")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.threads < 1 or a.steps < 1 or a.warmup < 0 or a.classes < 1:
        ap.error("--threads, --steps and --classes must be positive, --warmup not negative")
    if a.mode == "compile" and a.warmup < 1:
        a.warmup = 1  # the first call compiles

    import torch
    import torchvision

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set
    torch.manual_seed(0)
    n = a.input[0]
    out = {
        "peer": "torch", "mode": a.mode, "model": a.model, "input": "x".join(map(str, a.input)),
        "threads": torch.get_num_threads(), "steps": a.steps, "warmup": a.warmup,
        "torch_version": torch.__version__, "torchvision_version": torchvision.__version__,
        "python": sys.executable, "loadavg_before": loadavg(),
    }
    model = build(a.model, a.classes).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(*a.input)
    y = torch.randint(0, a.classes, (n,))
    if a.mode == "compile":
        if not hasattr(torch, "compile"):
            out["skipped"] = f"torch {torch.__version__} has no torch.compile"
        else:
            try:
                model = torch.compile(model)
            except Exception as e:  # noqa: BLE001 — report any failure as a skip
                out["skipped"] = f"torch.compile failed: {type(e).__name__}: {e}"
    if "skipped" not in out:
        try:
            t0 = time.perf_counter()
            times = time_steps(model, opt, x, y, a.warmup, a.steps)
            out["warmup_s"] = time.perf_counter() - t0 - sum(times)
            med = statistics.median(times)
            out.update(ms_per_step=1e3 * med, clips_per_s=n / med)
        except Exception as e:  # noqa: BLE001
            if a.mode != "compile":
                raise
            out["skipped"] = f"torch.compile failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out["loadavg_after"] = loadavg()
    if a.json:
        print(json.dumps(out))
    elif "skipped" in out:
        print(f"torch {a.mode} {a.model} {out['input']}: skipped: {out['skipped']}")
    else:
        print(f"torch {out['torch_version']} {a.mode} {a.model} {out['input']}, {out['threads']} threads: "
              f"{out['ms_per_step']:.2f} ms/step, {out['clips_per_s']:.3f} clips/s, "
              f"peak RSS {out['peak_rss_mb']:.1f} MB, load {out['loadavg_before']:.2f}")


if __name__ == "__main__":
    main()
