#!/usr/bin/env python3
"""pyav_decode.py — the PyAV peer of `dojo bench decode`.

Reads the clip plan that `dojo bench decode --plan-out PLAN` wrote and decodes
the same clips with PyAV the usual way: open the container, seek to the
keyframe at or before the clip's first frame (container.seek(pts, backward=True,
stream=...)), decode forward, skip frames before the first pts, take the T
frames of the clip (every stride-th frame, by their pts) and convert each to RGB24 (at S x S when the plan's size is not 0), like the
dojo side. Prints the same figures (clips_per_s, decoded_per_delivered,
seeks_per_clip) as one JSON line with --json.

The plan may group clips (`dojo bench decode --order video --reuse --share`):
with "reuse" the container stays open while clips come from the same file,
and clips with the same "group" number are read with one seek, decoding
forward once and handing each frame to every clip of the group that holds it
(what decord's get_batch does).

usage: pyav_decode.py PLAN [--json]
"""
import json
import sys
import time

import av

from decode_plan import groups_of, read_plan


def open_stream(path, index, threads):
    container = av.open(path)
    stream = container.streams[index]
    stream.thread_count = threads
    if threads > 1:
        stream.thread_type = "SLICE"
    return container, stream


def convert(frame, size):
    if size:
        frame.to_ndarray(format="rgb24", width=size, height=size)
    else:
        frame.to_ndarray(format="rgb24")


def read_group(container, stream, group, frames, size):
    """Seeks once to the first clip's start and decodes forward until every
    clip of the group has its frames; returns (decoded, delivered)."""
    decoded = delivered = 0
    got = [0] * len(group)
    # the frames of each clip by pts (every stride-th frame from its start)
    wanted = [set(c["pts"]) if "pts" in c else None for c in group]
    first = min(int(c["start_pts"]) for c in group)
    container.seek(first, backward=True, any_frame=False, stream=stream)
    for frame in container.decode(stream):
        decoded += 1
        if frame.pts is None:
            continue
        for i, clip in enumerate(group):
            if got[i] >= frames or frame.pts < clip["start_pts"]:
                continue
            if wanted[i] is not None and frame.pts not in wanted[i]:
                continue
            convert(frame, size)
            got[i] += 1
            delivered += 1
        if min(got) == frames:
            break
    return decoded, delivered


def main():
    plan = read_plan(__doc__)
    frames, size, threads = int(plan["frames"]), int(plan["size"]), int(plan["threads"])
    clips = plan["clips"]
    reuse = bool(plan.get("reuse", False))
    decoded = delivered = seeks = 0
    container = stream = None
    open_path = None
    t0, c0 = time.perf_counter(), time.process_time()
    for group in groups_of(clips):
        path = group[0]["path"]
        if container is not None and not (reuse and path == open_path):
            container.close()
            container = None
        if container is None:
            container, stream = open_stream(path, group[0]["stream"], threads)
            open_path = path
        d, n = read_group(container, stream, group, frames, size)
        decoded += d
        delivered += n
        seeks += 1
    if container is not None:
        container.close()
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {
        "bench": "decode-pyav",
        "pyav": av.__version__,
        "libavcodec": "%d.%d.%d" % tuple(av.library_versions["libavcodec"]),
        "clips": len(clips),
        "seconds": round(secs, 4),
        "cpu_seconds": round(cpu, 4),
        "clips_per_s": round(len(clips) / secs, 3),
        "clips_per_cpu_s": round(len(clips) / cpu, 3),
        "decoded_per_delivered": round(decoded / max(delivered, 1), 4),
        "seeks_per_clip": round(seeks / len(clips), 4),
        "delivered": delivered,
    }
    if "--json" in sys.argv:
        print(json.dumps(out))
    else:
        print("pyav %s: %d clips in %.3f s (%.3f s CPU): %.1f clips/s, %.1f clips per CPU s, "
              "%.3f decoded per delivered, %.2f seeks per clip"
              % (out["pyav"], len(clips), secs, cpu, out["clips_per_s"], out["clips_per_cpu_s"],
                 out["decoded_per_delivered"], out["seeks_per_clip"]))


if __name__ == "__main__":
    main()
