"""decode_plan.py — what the decode peers (pyav_decode.py, torchcodec_decode.py)
share: reading the clip plan that `dojo bench decode --plan-out PLAN` wrote,
and cutting it into the groups of clips read together."""
import json
import sys


def read_plan(usage):
    """The plan named by the one non-option argument (exits with usage
    otherwise)."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit(usage)
    with open(args[0]) as f:
        return json.load(f)


def groups_of(clips):
    """Consecutive clips with the same group number (each clip alone when the
    plan has no groups)."""
    out = []
    for i, clip in enumerate(clips):
        g = clip.get("group", i)
        if out and out[-1][0] == g:
            out[-1][1].append(clip)
        else:
            out.append((g, [clip]))
    return [group for _, group in out]
