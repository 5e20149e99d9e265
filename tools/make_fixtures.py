#!/usr/bin/env python3
"""make_fixtures.py — generates dojo's PyTorch parity fixtures (tests/fixtures).

Run with a Python that has torch, torchvision and numpy (Debian 12:
`apt-get install python3-torch python3-torchvision python3-numpy`, then
`/usr/bin/python3 tools/make_fixtures.py`). The fixtures are committed, so
building and testing dojo never needs torch. tools/README.md documents every
file, tensor name and metadata key; keep the two in step.

Everything is deterministic: operator cases draw their tensors from
torch.manual_seed(seed of the case); the whole-network cases initialise every
parameter with the "hash init" below, which tests/unit/support/fixture.c
implements bit for bit in C.

The files are written by write_safetensors() below (the layout of the
reference `safetensors` library: sorted by dtype size then name, header
padded with spaces to 8 bytes). One extra file, safetensors/reference.safetensors,
is written by the `safetensors` package itself when it is importable, to test
that dojo reads what the reference library writes.
"""

import argparse
import copy
import json
import math
import os
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures")

# ----------------------------------------------------------------------------
# safetensors writer (numpy arrays)

ST_DTYPES = {
    np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.float16): "F16",
    np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
    np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL",
}


def write_safetensors(path, tensors, metadata):
    """tensors: {name: np.ndarray}; metadata: {str: str}. Atomic replace."""
    order = sorted(tensors, key=lambda n: (-tensors[n].dtype.itemsize, n))
    header = {}
    if metadata:
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    at = 0
    blobs = []
    for name in order:
        a = np.asarray(tensors[name])
        a = a if a.flags.c_contiguous else a.copy()  # (ascontiguousarray makes 0-d 1-d)
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": ST_DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [at, at + len(data)]}
        at += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------
# The hash init (same function in tests/unit/support/fixture.c)

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
NPOS = 32  # sampled positions per tensor


def fnv1a64(name):
    h = int(FNV_OFFSET)
    for b in name.encode("utf-8"):
        h = ((h ^ b) * int(FNV_PRIME)) & 0xFFFFFFFFFFFFFFFF
    return np.uint64(h)


def hash_u64(name, index):
    """mix64(fnv1a64(name) + (index + 1) * GOLDEN), index a uint64 array."""
    with np.errstate(over="ignore"):
        z = fnv1a64(name) + (index.astype(np.uint64) + np.uint64(1)) * GOLDEN
        z = (z ^ (z >> np.uint64(30))) * MIX1
        z = (z ^ (z >> np.uint64(27))) * MIX2
        return z ^ (z >> np.uint64(31))


def hash_init(name, n, scale):
    """float32 w[i] = scale * (2u - 1), u = (hash_u64(name, i) >> 40) / 2^24."""
    u = (hash_u64(name, np.arange(n, dtype=np.uint64)) >> np.uint64(40)).astype(np.float32)
    u = u * np.float32(1.0 / 16777216.0)
    return np.float32(scale) * (np.float32(2.0) * u - np.float32(1.0))


def hash_positions(name, numel):
    """NPOS positions in [0, numel): hash_u64(name + "#pos", j) % numel."""
    return (hash_u64(name + "#pos", np.arange(NPOS, dtype=np.uint64)) % np.uint64(numel)).astype(np.int64)


# ----------------------------------------------------------------------------
# Operator cases

def f32(t):
    return t.detach().to(dtype=__import__("torch").float32).cpu().numpy().copy()


def op_case(name, op, params, seed, inputs, fn, extra=None, no_grad=()):
    """inputs: {name: float32 torch tensor}; fn(**inputs64) -> output tensor.
    The reference is computed in float64 from the float32 inputs; gradients
    for every input not in no_grad, from a random upstream gradient dout."""
    import torch
    torch.manual_seed(seed + 1000)
    x64 = {}
    for k, v in inputs.items():
        t = v.detach().double() if v.is_floating_point() else v.detach()
        if v.is_floating_point() and k not in no_grad:
            t.requires_grad_(True)
        x64[k] = t
    out = fn(**x64)
    dout = torch.randn(out.shape, dtype=torch.float32)
    grad_inputs = [k for k in inputs if k not in no_grad and inputs[k].is_floating_point()]
    grads = torch.autograd.grad(out, [x64[k] for k in grad_inputs], dout.double(), allow_unused=False)
    tensors = {k: (f32(v) if v.is_floating_point() else v.numpy().copy()) for k, v in inputs.items()}
    tensors["out"] = f32(out)
    tensors["dout"] = f32(dout)
    for k, g in zip(grad_inputs, grads):
        tensors["d" + k] = f32(g)
    if extra:
        tensors.update(extra() if callable(extra) else extra)
    meta = {
        "op": op, "case": name, "params": json.dumps(params, sort_keys=True), "seed": str(seed),
        "inputs": json.dumps(list(inputs)), "grads": json.dumps({k: "d" + k for k in grad_inputs}),
        "reference": "torch %s, float64 from the float32 inputs, stored as float32" % torch.__version__,
    }
    write_safetensors(os.path.join(OUT, "ops", name + ".safetensors"), tensors, meta)
    return tensors


def make_conv_cases():
    import torch
    import torch.nn.functional as F
    cases = [
        # name, N, Cin, Cout, (T,H,W), kernel, stride, padding, dilation, groups, bias
        ("conv3d_k3_pad1", 2, 4, 6, (5, 6, 7), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1), 1, True),
        ("conv3d_stride2", 2, 3, 4, (7, 8, 9), (3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), 1, False),
        ("conv3d_k133", 2, 4, 5, (3, 7, 6), (1, 3, 3), (1, 1, 1), (0, 1, 1), (1, 1, 1), 1, True),
        ("conv3d_k311", 2, 4, 5, (5, 4, 3), (3, 1, 1), (1, 1, 1), (1, 0, 0), (1, 1, 1), 1, False),
        ("conv3d_stem7", 1, 3, 8, (4, 16, 16), (3, 7, 7), (1, 2, 2), (1, 3, 3), (1, 1, 1), 1, False),
        ("conv3d_dilation2", 1, 3, 4, (6, 7, 8), (3, 3, 3), (1, 1, 1), (2, 2, 2), (2, 2, 2), 1, True),
        ("conv3d_groups2", 2, 4, 6, (4, 5, 5), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1), 2, True),
        ("conv3d_depthwise", 2, 6, 6, (4, 5, 6), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1), 6, False),
    ]
    for i, (name, n, cin, cout, thw, k, s, p, d, g, bias) in enumerate(cases):
        seed = 100 + i
        torch.manual_seed(seed)
        inputs = {"x": torch.randn(n, cin, *thw), "weight": torch.randn(cout, cin // g, *k) * 0.2}
        if bias:
            inputs["bias"] = torch.randn(cout) * 0.1
        params = {"kernel": list(k), "stride": list(s), "padding": list(p), "dilation": list(d),
                  "groups": g, "bias": bias}

        def fn(x, weight, bias=None, s=s, p=p, d=d, g=g):
            return F.conv3d(x, weight, bias, stride=s, padding=p, dilation=d, groups=g)
        op_case(name, "conv3d", params, seed, inputs, fn)


def make_norm_cases():
    import torch
    import torch.nn.functional as F
    torch.manual_seed(200)
    x = torch.randn(3, 4, 2, 3, 3) * 2 + 0.5
    w, b = torch.randn(4) * 0.5 + 1, torch.randn(4) * 0.1
    rm, rv = torch.randn(4) * 0.1, torch.rand(4) + 0.5
    for mode, seed in (("train", 200), ("eval", 201)):
        rm64, rv64 = rm.double().clone(), rv.double().clone()
        training = mode == "train"

        def fn(x, weight, bias, rm64=rm64, rv64=rv64, training=training):
            return F.batch_norm(x, rm64, rv64, weight, bias, training=training, momentum=0.1, eps=1e-5)
        def extra(rm64=rm64, rv64=rv64):
            return {"running_mean_before": f32(rm), "running_var_before": f32(rv),
                    "running_mean_after": f32(rm64), "running_var_after": f32(rv64)}
        op_case("batch_norm_" + mode, "batch_norm",
                          {"training": training, "momentum": 0.1, "eps": 1e-5,
                           "running_var_update": "unbiased batch variance (N-1)" if training else "none"},
                          seed, {"x": x, "weight": w, "bias": b}, fn, extra)
    torch.manual_seed(210)
    op_case("layer_norm", "layer_norm", {"normalized_shape": [8], "eps": 1e-5}, 210,
            {"x": torch.randn(2, 3, 8) * 3, "weight": torch.randn(8) * 0.5 + 1, "bias": torch.randn(8) * 0.1},
            lambda x, weight, bias: F.layer_norm(x, (8,), weight, bias, eps=1e-5))
    torch.manual_seed(220)
    op_case("group_norm", "group_norm", {"groups": 3, "eps": 1e-5}, 220,
            {"x": torch.randn(2, 6, 2, 3, 3) * 2, "weight": torch.randn(6) * 0.5 + 1, "bias": torch.randn(6) * 0.1},
            lambda x, weight, bias: F.group_norm(x, 3, weight, bias, eps=1e-5))


def make_pointwise_cases():
    import torch
    import torch.nn.functional as F
    acts = [
        ("relu", "relu", {}, F.relu),
        ("gelu", "gelu", {"approximate": "none"}, lambda x: F.gelu(x)),
        ("gelu_tanh", "gelu", {"approximate": "tanh"}, lambda x: F.gelu(x, approximate="tanh")),
        ("silu", "silu", {}, F.silu),
        ("sigmoid", "sigmoid", {}, torch.sigmoid),
        ("softmax", "softmax", {"dim": -1}, lambda x: torch.softmax(x, dim=-1)),
    ]
    for i, (name, op, params, f) in enumerate(acts):
        seed = 300 + i
        torch.manual_seed(seed)
        shape = (2, 3, 7) if op == "softmax" else (2, 3, 4, 5)
        x = torch.randn(*shape) * 2
        x[x.abs() < 1e-3] = 0.5  # no exact kinks for relu
        op_case(name, op, params, seed, {"x": x}, lambda x, f=f: f(x))
    torch.manual_seed(320)
    x = torch.randn(2, 3, 4, 5)
    op_case("dropout_eval", "dropout", {"p": 0.5, "training": False}, 320, {"x": x},
            lambda x: F.dropout(x, p=0.5, training=False))


def make_pool_cases():
    import torch
    import torch.nn.functional as F
    cases = [
        ("max_pool3d_k2s2", "max_pool3d", {"kernel": [2, 2, 2], "stride": [2, 2, 2], "padding": [0, 0, 0]},
         (2, 3, 4, 6, 6)),
        ("max_pool3d_k3s2p1", "max_pool3d", {"kernel": [3, 3, 3], "stride": [2, 2, 2], "padding": [1, 1, 1]},
         (2, 3, 5, 7, 6)),
        ("max_pool3d_k133", "max_pool3d", {"kernel": [1, 3, 3], "stride": [1, 2, 2], "padding": [0, 1, 1]},
         (1, 2, 3, 8, 8)),
        ("avg_pool3d_k2s2", "avg_pool3d", {"kernel": [2, 2, 2], "stride": [2, 2, 2], "padding": [0, 0, 0],
                                           "count_include_pad": True}, (2, 3, 4, 6, 6)),
        ("avg_pool3d_k3s2p1", "avg_pool3d", {"kernel": [3, 3, 3], "stride": [2, 2, 2], "padding": [1, 1, 1],
                                             "count_include_pad": True}, (2, 3, 5, 7, 6)),
        ("adaptive_avg_pool3d_global", "adaptive_avg_pool3d", {"output_size": [1, 1, 1]}, (2, 4, 3, 5, 6)),
        ("adaptive_avg_pool3d_233", "adaptive_avg_pool3d", {"output_size": [2, 3, 3]}, (2, 3, 4, 6, 7)),
    ]
    for i, (name, op, p, shape) in enumerate(cases):
        seed = 400 + i
        torch.manual_seed(seed)
        x = torch.randn(*shape)
        if op == "max_pool3d":
            f = lambda x, p=p: F.max_pool3d(x, p["kernel"], p["stride"], p["padding"])
        elif op == "avg_pool3d":
            f = lambda x, p=p: F.avg_pool3d(x, p["kernel"], p["stride"], p["padding"], count_include_pad=True)
        else:
            f = lambda x, p=p: F.adaptive_avg_pool3d(x, p["output_size"])
        op_case(name, op, p, seed, {"x": x}, f)


def make_tensor_op_cases():
    import torch
    torch.manual_seed(500)
    a, b = torch.randn(2, 3, 4, 5), torch.randn(3, 1, 5)
    op_case("add_broadcast", "add", {"broadcast": "numpy rules"}, 500, {"a": a, "b": b}, lambda a, b: a + b)
    torch.manual_seed(501)
    a, b = torch.randn(2, 3, 4, 5), torch.randn(3, 1, 5)
    op_case("mul_broadcast", "mul", {"broadcast": "numpy rules"}, 501, {"a": a, "b": b}, lambda a, b: a * b)
    torch.manual_seed(502)
    a, b = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    op_case("concat", "concat", {"dim": 1}, 502, {"a": a, "b": b}, lambda a, b: torch.cat([a, b], dim=1))
    torch.manual_seed(503)
    op_case("permute", "permute", {"dims": [0, 2, 3, 1]}, 503, {"x": torch.randn(2, 3, 4, 5)},
            lambda x: x.permute(0, 2, 3, 1).contiguous())
    torch.manual_seed(504)
    op_case("linear", "linear", {"in_features": 5, "out_features": 4, "bias": True}, 504,
            {"x": torch.randn(2, 3, 5), "weight": torch.randn(4, 5) * 0.4, "bias": torch.randn(4) * 0.1},
            lambda x, weight, bias: torch.nn.functional.linear(x, weight, bias))


def attention(q, k, v, heads, axis):
    """Multi-head scaled dot-product attention over axis 1 (T) or 2 (S) of
    (B, T, S, D) tensors; heads split D; no mask, no projections."""
    import torch
    if axis == 2:
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, S, T, D)
    B, L, M, D = q.shape  # attend over L for each of the M positions
    dh = D // heads

    def split(t):  # (B, L, M, D) -> (B, M, H, L, dh)
        return t.reshape(B, L, M, heads, dh).permute(0, 2, 3, 1, 4)
    qs, ks, vs = split(q), split(k), split(v)
    att = torch.softmax(qs @ ks.transpose(-1, -2) / math.sqrt(dh), dim=-1)
    out = (att @ vs).permute(0, 3, 1, 2, 4).reshape(B, L, M, D)
    return out.transpose(1, 2) if axis == 2 else out


def make_attention_and_loss_cases():
    import torch
    import torch.nn.functional as F
    for axis, name, seed in ((1, "attention_over_t", 600), (2, "attention_over_s", 601)):
        torch.manual_seed(seed)
        B, T, S, D, H = 2, 4, 3, 8, 2
        q, k, v = (torch.randn(B, T, S, D) for _ in range(3))
        op_case(name, "attention", {"heads": H, "axis": "T" if axis == 1 else "S", "layout": "B,T,S,D",
                                    "scale": "1/sqrt(D/heads)", "mask": "none"},
                seed, {"q": q, "k": k, "v": v}, lambda q, k, v, axis=axis: attention(q, k, v, H, axis))
    torch.manual_seed(610)
    logits, labels = torch.randn(6, 10) * 2, torch.randint(0, 10, (6,))
    op_case("cross_entropy_ls", "cross_entropy", {"label_smoothing": 0.1, "reduction": "mean"}, 610,
            {"logits": logits, "labels": labels},
            lambda logits, labels: F.cross_entropy(logits, labels, label_smoothing=0.1))
    torch.manual_seed(611)
    pred, target = torch.randn(2, 6, 4), torch.randn(2, 6, 4)
    mask = (torch.rand(2, 6) < 0.5).float()
    mask[0, 0] = 1.0

    def mse(pred, target, mask):
        per_token = ((pred - target) ** 2).mean(dim=-1)
        return (per_token * mask).sum() / mask.sum()
    op_case("mse_masked", "mse_masked", {"formula": "sum(mask * mean_D((pred-target)^2)) / sum(mask)"}, 611,
            {"pred": pred, "target": target, "mask": mask}, mse, no_grad=("target", "mask"))


# ----------------------------------------------------------------------------
# Whole networks

NET_INPUT = (2, 3, 8, 32, 32)
NET_LABELS = [3, 7]
NET_CLASSES = 10
SGD = {"lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4, "dampening": 0.0, "nesterov": False,
       "decay_applies_to": "all parameters (torch.optim.SGD default: conv, BN weight and bias, fc)"}


def fan_in_scale(shape):
    """float32(1 / sqrt(prod(shape[1:]))), the scale of conv/linear weights."""
    return float(np.float32(1.0 / math.sqrt(float(np.prod(shape[1:])))))


def init_rule(name, shape, sd):
    """(kind, scale): how the hash init fills a state_dict entry."""
    leaf = name.rsplit(".", 1)[-1]
    sibling = name[: -len(leaf)] + "weight"
    if leaf == "running_mean" or leaf == "num_batches_tracked":
        return "zeros", 0.0
    if leaf == "running_var":
        return "ones", 0.0
    if leaf == "weight" and len(shape) >= 2:  # conv (5-D) and linear (2-D)
        return "hash", fan_in_scale(shape)
    if leaf == "weight":  # BN gamma
        return "hash", 1.0
    if leaf == "bias" and sibling in sd and sd[sibling].dim() >= 2:  # conv/linear bias
        return "hash", fan_in_scale(list(sd[sibling].shape))
    return "hash", 0.1  # BN beta


def make_net(arch):
    import torch
    import torchvision.models.video as tvv
    torch.manual_seed(0)
    model = getattr(tvv, arch)(num_classes=NET_CLASSES)
    sd = model.state_dict()
    params_meta, new_sd, tensors = [], {}, {}
    for name, t in sd.items():
        kind, scale = init_rule(name, list(t.shape), sd)
        if kind == "hash":
            new_sd[name] = torch.from_numpy(hash_init(name, t.numel(), scale).reshape(t.shape))
        elif kind == "zeros":
            new_sd[name] = torch.zeros_like(t)
        else:
            new_sd[name] = torch.ones_like(t)
        params_meta.append({"name": name, "shape": list(t.shape), "dtype": "I64" if t.dtype == torch.int64 else "F32",
                            "init": kind, "scale": "%.9g" % scale,
                            "trainable": name in dict(model.named_parameters())})
        if kind == "hash":
            pos = hash_positions(name, t.numel())
            tensors["pos/" + name] = pos
            tensors["init/%s/at" % name] = new_sd[name].reshape(-1).numpy()[pos].copy()
    model.load_state_dict(new_sd)
    x = torch.from_numpy(hash_init("input", int(np.prod(NET_INPUT)), 1.0).reshape(NET_INPUT))
    labels = torch.tensor(NET_LABELS, dtype=torch.int64)
    tensors["input"] = x.numpy().copy()
    tensors["labels"] = labels.numpy().copy()
    f32_model = copy.deepcopy(model)
    losses = net_steps(model.double(), x.double(), labels, tensors, "")
    f32_spread(f32_model, x, labels, tensors)
    meta = {
        "model": "torchvision.models.video." + arch, "num_classes": str(NET_CLASSES),
        "input_shape": json.dumps(list(NET_INPUT)), "labels": json.dumps(NET_LABELS),
        "params": json.dumps(params_meta), "sgd": json.dumps(SGD, sort_keys=True),
        "loss": "cross_entropy, mean, no label smoothing",
        "precision": "float64 forward/backward from float32 hash-initialised weights; f32dev/...: the largest "
                     "distance of twelve float32 runs of PyTorch from it (see f32_spread)",
        "hash_init": "see tools/README.md (fnv1a64 + splitmix64 finaliser, positions from name + '#pos')",
        "torch_version": torch.__version__, "torchvision_version": __import__("torchvision").__version__,
    }
    write_safetensors(os.path.join(OUT, "nets", arch + ".safetensors"), tensors, meta)
    print("%s: %d state entries, loss %.6f, losses %s" % (arch, len(sd), losses[0], losses))


def net_steps(model, x, labels, tensors, prefix):
    """Eval logits, then three SGD steps in training mode: the first step's
    logits, loss and gradients, the losses and the state after the steps,
    under prefix + the usual keys. Returns the losses."""
    import torch
    model.eval()
    with torch.no_grad():
        tensors[prefix + "logits_eval"] = f32(model(x))
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=SGD["lr"], momentum=SGD["momentum"],
                          weight_decay=SGD["weight_decay"])
    losses = []
    for step in range(3):
        opt.zero_grad()
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            tensors[prefix + "logits"] = f32(logits)
            tensors[prefix + "loss"] = np.array(loss.item(), dtype=np.float64)
            for name, p in model.named_parameters():
                stats(tensors, prefix + "grad/" + name, name, p.grad)
        opt.step()
    tensors[prefix + "losses"] = np.array(losses, dtype=np.float64)
    for name, t in model.state_dict().items():
        stats(tensors, prefix + "step3/" + name, name, t)
    return losses


def f32_spread(model, x, labels, tensors):
    """How well float32 itself determines each compared quantity: the same
    steps run in PyTorch's float32 twelve ways (its default kernels, without
    oneDNN, and with the input scaled by 1 +- 1e-7 ... 1 +- 1e-6, i.e. the
    same data up to a few float32 roundings); f32dev/KEY is the largest
    distance of those runs from the float64 reference KEY, element by
    element. The first step's quantities (logits, loss, gradients) take the
    six runs closest to the data (scales up to 3e-7); the later steps
    (losses, the state after three steps) all twelve, as their scatter is
    wider and needs more runs to show. Where a network is ill-conditioned (a
    sum cancelling to ~0, batch norm over a few values, a ReLU mask that
    rounding flips, SGD steps that amplify all of it) these runs scatter, and
    the test allows dojo a small multiple of that scatter instead of the
    relative tolerance."""
    import torch
    # (input scale, oneDNN on): the first step's quantities take the runs with
    # |scale| <= 3e-7, the steps all of them
    scales = (1e-7, -1e-7, 2e-7, -2e-7, 3e-7, -3e-7, 5e-7, -5e-7, 1e-6, -1e-6)
    variants = [(0.0, True), (0.0, False)] + [(e, True) for e in scales]
    runs = []
    for scale, onednn in variants:
        saved = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = onednn
        out = {}
        net_steps(copy.deepcopy(model).float(), (x.double() * (1.0 + scale)).float(), labels, out, "")
        torch.backends.mkldnn.enabled = saved
        runs.append(out)
    for key in runs[0]:
        ref = tensors[key]
        if ref.dtype == np.int64:
            continue
        steps = key == "losses" or key.startswith("step3/")
        dev = np.zeros(np.shape(ref), dtype=np.float64)
        for (scale, _), out in zip(variants, runs):
            if steps or abs(scale) <= 3e-7:
                dev = np.maximum(dev, np.abs(np.asarray(out[key], dtype=np.float64) - np.asarray(ref, dtype=np.float64)))
        tensors["f32dev/" + key] = dev


def stats(tensors, prefix, name, t):
    """L2 norm, sum (float64) and values at the hash positions of t."""
    a = t.detach().cpu().double().reshape(-1).numpy()
    tensors[prefix + "/norm"] = np.array(math.sqrt(float(np.dot(a, a))), dtype=np.float64)
    tensors[prefix + "/sum"] = np.array(float(a.sum()), dtype=np.float64)
    tensors[prefix + "/at"] = a[hash_positions(name, a.size)].astype(np.float64 if t.dtype == __import__(
        "torch").int64 else np.float32)


# ----------------------------------------------------------------------------
# A file written by the reference library, and a hash-init check file

def make_reference_file():
    try:
        import torch
        from safetensors.torch import save_file
    except ImportError:
        print("safetensors package absent: keeping the committed safetensors/reference.safetensors")
        return
    t = {
        "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1,
        "f64": torch.arange(4, dtype=torch.float64) / 3,
        "f16": torch.tensor([1.0, -2.5, 65504.0, 6e-8], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -3.0, 0.15625], dtype=torch.bfloat16),
        "i64": torch.tensor([[-1, 2**40], [7, 0]], dtype=torch.int64),
        "i32": torch.tensor([-5, 9], dtype=torch.int32),
        "i16": torch.tensor([-300], dtype=torch.int16),
        "i8": torch.tensor([-7, 7], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 3], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.25, dtype=torch.float32),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
        "five_d": torch.arange(2 * 1 * 3 * 1 * 2, dtype=torch.float32).reshape(2, 1, 3, 1, 2),
    }
    os.makedirs(os.path.join(OUT, "safetensors"), exist_ok=True)
    save_file(t, os.path.join(OUT, "safetensors", "reference.safetensors"),
              metadata={"format": "pt", "written_by": "safetensors.torch.save_file", "unicode": "\u00e9t\u00e9"})


def make_hash_file():
    names = ["stem.0.weight", "fc.bias", "input", "layer1.0.conv1.0.weight"]
    t = {}
    for i, n in enumerate(names):
        t["values/" + n] = hash_init(n, 1000, [0.1, 1.0, 1.0, 0.0481125224][i])
        t["pos/" + n] = hash_positions(n, 1000)
    write_safetensors(os.path.join(OUT, "hash_init.safetensors"), t,
                      {"names": json.dumps(names), "scales": json.dumps(["0.1", "1", "1", "0.0481125224"]),
                       "n": "1000"})


# ----------------------------------------------------------------------------
# Checkpoint fixtures: small torchvision VideoResNets written as plain state
# dicts, for `dojo forward` and dj_checkpoint_load (tests/fixtures/checkpoint)

CKPT_INPUT = (2, 3, 4, 32, 32)
CKPT_CLASSES = 5
CKPT_WIDTHS = (8, 16, 24, 32)  # as tests/fixtures/checkpoint/*_tiny.yaml
CKPT_STEM_WIDTH, CKPT_STEM_MID = 8, 6


def tiny_video_resnet(kind):
    """torchvision's VideoResNet (its BasicBlock, conv builders, _make_layer
    and forward, so midplanes and state-dict keys are torchvision's) at the
    widths of tests/fixtures/checkpoint/{kind}_tiny.yaml."""
    import torch.nn as nn
    from torchvision.models.video import resnet as tvr
    m = tvr.VideoResNet.__new__(tvr.VideoResNet)
    nn.Module.__init__(m)
    w, mid = CKPT_STEM_WIDTH, CKPT_STEM_MID
    if kind == "r3d":
        conv = tvr.Conv3DSimple
        m.stem = nn.Sequential(nn.Conv3d(3, w, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                               nn.BatchNorm3d(w), nn.ReLU(inplace=True))
    else:
        conv = tvr.Conv2Plus1D
        m.stem = nn.Sequential(nn.Conv3d(3, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
                               nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
                               nn.Conv3d(mid, w, (3, 1, 1), (1, 1, 1), (1, 0, 0), bias=False),
                               nn.BatchNorm3d(w), nn.ReLU(inplace=True))
    m.inplanes = w
    for i, planes in enumerate(CKPT_WIDTHS):
        setattr(m, "layer%d" % (i + 1), m._make_layer(tvr.BasicBlock, conv, planes, 1, stride=1 if i == 0 else 2))
    m.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
    m.fc = nn.Linear(CKPT_WIDTHS[-1], CKPT_CLASSES)
    return m


def randomise_video_resnet(m, x):
    """Random weights; BN statistics from a pass over x, then perturbed,
    and random BN affine parameters, so eval mode is a real test."""
    import torch
    import torch.nn as nn
    for mod in m.modules():
        if isinstance(mod, nn.Conv3d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(mod, nn.BatchNorm3d):
            mod.momentum = 1.0
    m.train()
    with torch.no_grad():
        m(x)
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm3d):
                mod.momentum = 0.1
                n = mod.num_features
                mod.running_mean.add_(0.1 * torch.randn(n))
                mod.running_var.mul_(0.8 + 0.4 * torch.rand(n))
                mod.weight.copy_(0.5 + torch.rand(n))
                mod.bias.copy_(0.2 * torch.randn(n))
                mod.num_batches_tracked.fill_(3)


def make_checkpoint_fixtures():
    import torch
    torch.manual_seed(20261125)
    x = torch.randn(*CKPT_INPUT)
    expected = {}
    for kind, keep_nbt, meta in (("r3d", True, None), ("r2plus1d", False, {"format": "pt"})):
        m = tiny_video_resnet(kind)
        randomise_video_resnet(m, x)
        m.eval()
        sd = {k: v.detach().clone() for k, v in m.state_dict().items()
              if keep_nbt or not k.endswith("num_batches_tracked")}
        with torch.no_grad():
            logits = m.double()(x.double())
        expected[kind + "_tiny/logits"] = f32(logits)
        write_safetensors(os.path.join(OUT, "checkpoint", kind + "_tiny_tv.safetensors"),
                          {k: v.numpy() for k, v in sd.items()}, meta)
        print("%s_tiny: %d state entries, %d parameters, logits %s" % (
            kind, len(sd), sum(p.numel() for p in m.parameters()), f32(logits)[0]))
    write_safetensors(os.path.join(OUT, "checkpoint", "input.safetensors"), {"input": x.numpy().copy()},
                      {"shape": json.dumps(list(CKPT_INPUT)), "seed": "20261125"})
    write_safetensors(os.path.join(OUT, "checkpoint", "expected.safetensors"), expected,
                      {"precision": "float64 forward (eval mode) of the float32 weights and input",
                       "torch_version": torch.__version__,
                       "torchvision_version": __import__("torchvision").__version__})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="all", help="all, ops, nets, reference, hash or checkpoint")
    args = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch
    torch.set_num_threads(2)
    if args.only in ("all", "hash"):
        make_hash_file()
    if args.only in ("all", "reference"):
        make_reference_file()
    if args.only in ("all", "ops"):
        make_conv_cases()
        make_norm_cases()
        make_pointwise_cases()
        make_pool_cases()
        make_tensor_op_cases()
        make_attention_and_loss_cases()
    if args.only in ("all", "nets"):
        for arch in ("r3d_18", "mc3_18", "r2plus1d_18"):
            make_net(arch)
    if args.only in ("all", "checkpoint"):
        make_checkpoint_fixtures()


if __name__ == "__main__":
    main()
