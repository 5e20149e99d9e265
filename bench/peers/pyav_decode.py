#!/usr/bin/env python3
"""pyav_decode.py — the PyAV peer of `dojo bench decode`.

Reads the clip plan that `dojo bench decode --plan-out PLAN` wrote and decodes
the same clips with PyAV the usual way: open the container, seek to the
keyframe at or before the clip's first frame (container.seek(pts, backward=True,
stream=...)), decode forward, skip frames before the first pts, take T frames
and convert each to RGB24 (at S x S when the plan's size is not 0), like the
dojo side. Prints the same figures (clips_per_s, decoded_per_delivered,
seeks_per_clip) as one JSON line with --json.

usage: pyav_decode.py PLAN [--json]
"""
import json
import sys
import time

import av


def read_clip(clip, frames, size, threads):
    decoded = delivered = 0
    with av.open(clip["path"]) as container:
        stream = container.streams[clip["stream"]]
        stream.thread_count = threads
        if threads > 1:
            stream.thread_type = "SLICE"
        container.seek(int(clip["start_pts"]), backward=True, any_frame=False, stream=stream)
        for frame in container.decode(stream):
            decoded += 1
            if frame.pts is not None and frame.pts < clip["start_pts"]:
                continue
            if size:
                frame.to_ndarray(format="rgb24", width=size, height=size)
            else:
                frame.to_ndarray(format="rgb24")
            delivered += 1
            if delivered == frames:
                break
    return decoded, delivered


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit(__doc__)
    with open(args[0]) as f:
        plan = json.load(f)
    frames, size, threads = int(plan["frames"]), int(plan["size"]), int(plan["threads"])
    clips = plan["clips"]
    decoded = delivered = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for clip in clips:
        d, n = read_clip(clip, frames, size, threads)
        decoded += d
        delivered += n
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
        "seeks_per_clip": 1.0,
        "delivered": delivered,
    }
    if "--json" in sys.argv:
        print(json.dumps(out))
    else:
        print("pyav %s: %d clips in %.3f s (%.3f s CPU): %.1f clips/s, %.1f clips per CPU s, "
              "%.3f decoded per delivered, 1 seek per clip"
              % (out["pyav"], len(clips), secs, cpu, out["clips_per_s"], out["clips_per_cpu_s"],
                 out["decoded_per_delivered"]))


if __name__ == "__main__":
    main()
