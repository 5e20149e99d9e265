#!/bin/sh
# test_device.sh — `--device` on train and bench train-step, and what
# `dojo version` says about CUDA and the GPUs, in all three situations: built
# without CUDA, built with CUDA but no GPU reachable, or a GPU present.
. "$(dirname "$0")/lib.sh"

BTS="bench train-step --model r3d_mini --input 2x3x4x16x16 --steps 1 --warmup 0"
expect "train --device malformed" 2 "--device 'gpu': expected cpu, cuda or cuda:N" -- "$DOJO" train --device gpu
expect "train --device cuda:x" 2 "--device 'cuda:x'" -- "$DOJO" train --device cuda:x
expect "train --device cuda:-1" 2 "expected cpu, cuda or cuda:N" -- "$DOJO" train --device=cuda:-1
expect "bench --device malformed" 2 "--device 'CUDA'" -- "$DOJO" $BTS --device CUDA
expect "bench --device empty" 2 "device" -- "$DOJO" $BTS --device ""
expect "bench --device cpu" 0 "ms" -- "$DOJO" $BTS --device cpu
expect "train --help lists --device" 0 "--device cpu\|cuda" -- "$DOJO" train --help
expect "bench --help lists --device" 0 "--device" -- "$DOJO" bench train-step --help
expect "eval --device malformed" 2 "--device 'cuda:'" -- "$DOJO" eval x.safetensors --data d --device cuda:
expect "predict --device malformed" 2 "--device 'tpu'" -- "$DOJO" predict x.safetensors v.mp4 --device tpu

if ! "$DOJO" version | grep -q "^backends:.*cuda"; then
    expect "version without CUDA" 0 "cuda: *not built" -- "$DOJO" version
    expect "version --json without CUDA" 0 '"cuda":{"built":false}' -- "$DOJO" version --json
    expect "train --device cuda without CUDA" 1 "built without CUDA \(--device\)" -- "$DOJO" train --device cuda
    expect "bench --device cuda without CUDA" 1 "built without CUDA \(--device\)" -- "$DOJO" $BTS --device cuda:0
    expect "eval --device cuda without CUDA" 1 "built without CUDA \(--device\)" -- "$DOJO" eval x.safetensors --data d --device cuda
elif "$DOJO" version | grep -q "^gpu:.*no GPU"; then
    expect "version names the libraries" 0 "cuda: *runtime [0-9]+\.[0-9]+, driver [^,]+, cuDNN [0-9]+\.[0-9]+\.[0-9]+, cuBLASLt [0-9.]+, NCCL" -- "$DOJO" version
    expect "version says why no GPU" 0 "gpu: *no GPU: no CUDA device: " -- "$DOJO" version
    expect "version --json no GPU" 0 '"gpus":\[\],"no_gpu":"no CUDA device: ' -- "$DOJO" version --json
    expect "train --device cuda no GPU" 1 "error: no CUDA device: .*\(--device\)" -- "$DOJO" train --device cuda
    expect "bench --device cuda:1 no GPU" 1 "error: no CUDA device: .*\(--device\)" -- "$DOJO" $BTS --device cuda:1
    expect "predict --device cuda no GPU" 1 "error: no CUDA device: .*\(--device\)" -- "$DOJO" predict x.safetensors v.mp4 --device cuda
else
    expect "version lists a GPU" 0 "gpu 0: .*compute [0-9]+\.[0-9]+" -- "$DOJO" version
    expect "version --json GPU" 0 '"gpus":\[\{"index":0' -- "$DOJO" version --json
    expect "train --device cuda:1023 absent" 1 "no GPU cuda:1023" -- "$DOJO" train --device cuda:1023
    expect "bench --device cuda not wired" 1 "training step does not run on them yet" -- "$DOJO" $BTS --device cuda
fi
finish
