#!/usr/bin/env python3
"""check_tfevents.py — reads a folder of TensorBoard event files with
TensorBoard's own EventAccumulator and prints every scalar as one line
"TAG STEP VALUE" (sorted by tag, then in file order), after a first line
"file_version VERSION". Used by tests/unit/test_metrics.c to check that
dojo's hand-written event files are what TensorBoard reads.
Exit status 3 when tensorboard is not installed."""
import sys

try:
    from tensorboard.backend.event_processing import event_accumulator
except ImportError:
    print("tensorboard is not installed (pip install tensorboard)", file=sys.stderr)
    sys.exit(3)


def main():
    if len(sys.argv) != 2:
        print("usage: check_tfevents.py FILE_OR_DIR", file=sys.stderr)
        return 2
    acc = event_accumulator.EventAccumulator(sys.argv[1], size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    print("file_version", acc.file_version)
    for tag in sorted(acc.Tags()["scalars"]):
        for ev in acc.Scalars(tag):
            print(tag, ev.step, repr(ev.value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
