#!/usr/bin/env python3
"""torchcodec_decode.py — the torchcodec peer of `dojo bench decode`.

Reads the clip plan that `dojo bench decode --plan-out PLAN` wrote and decodes
the same clips with torchcodec (PyTorch's video decoder) the usual way: a
VideoDecoder on the file (seek_mode "exact": it scans the file's packets when
it opens, as dojo's index does once), then get_frames_at(indices) with the
clip's T frame indices (every stride-th frame from its first), RGB24 uint8
out, resized by the decoder to S x S when the plan's size is not 0 (dojo
converts to RGB24 with swscale the same way). One FFmpeg thread, as the plan
says. Prints clips_per_s and clips_per_cpu_s as one JSON line with --json;
torchcodec does not tell how many frames it decoded or how it seeked, so
decoded_per_delivered and seeks_per_clip are null.

The plan may group clips (`--order video --reuse --share`): with "reuse" the
decoder stays open while clips come from the same file, and the clips of one
group are read with one get_frames_at call over their indices.

usage: torchcodec_decode.py PLAN [--json]
"""
import json
import sys
import time

import torch
import torchcodec
from torchcodec.decoders import VideoDecoder

from decode_plan import groups_of, read_plan


def open_decoder(path, stream, threads, size):
    transforms = None
    if size:
        from torchcodec.transforms import Resize
        transforms = [Resize((size, size))]
    return VideoDecoder(path, stream_index=stream, num_ffmpeg_threads=max(threads, 1), seek_mode="exact",
                        transforms=transforms)


def main():
    plan = read_plan(__doc__)
    frames, stride = int(plan["frames"]), int(plan.get("stride", 1))
    size, threads = int(plan["size"]), int(plan["threads"])
    clips = plan["clips"]
    reuse = bool(plan.get("reuse", False))
    torch.set_num_threads(1)
    delivered = 0
    decoder, open_path = None, None
    t0, c0 = time.perf_counter(), time.process_time()
    for group in groups_of(clips):
        path = group[0]["path"]
        if decoder is None or not (reuse and path == open_path):
            decoder = open_decoder(path, int(group[0]["stream"]), threads, size)
            open_path = path
        indices = sorted({int(c["start"]) + j * stride for c in group for j in range(frames)})
        batch = decoder.get_frames_at(indices=indices)
        # each clip takes its frames from the batch (decoded once per group)
        delivered += frames * len(group)
        assert batch.data.shape[0] == len(indices) and batch.data.shape[1] == 3
    decoder = None
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {
        "bench": "decode-torchcodec",
        "torchcodec": torchcodec.__version__,
        "torch": torch.__version__,
        "clips": len(clips),
        "seconds": round(secs, 4),
        "cpu_seconds": round(cpu, 4),
        "clips_per_s": round(len(clips) / secs, 3),
        "clips_per_cpu_s": round(len(clips) / cpu, 3),
        "decoded_per_delivered": None,
        "seeks_per_clip": None,
        "delivered": delivered,
    }
    if "--json" in sys.argv:
        print(json.dumps(out))
    else:
        print("torchcodec %s: %d clips in %.3f s (%.3f s CPU): %.1f clips/s, %.1f clips per CPU s"
              % (out["torchcodec"], len(clips), secs, cpu, out["clips_per_s"], out["clips_per_cpu_s"]))


if __name__ == "__main__":
    main()
