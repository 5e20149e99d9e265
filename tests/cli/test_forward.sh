# test_forward.sh — `dojo forward`: bad command lines exit 2; torchvision state
# dicts (tests/fixtures/checkpoint, with and without num_batches_tracked) run
# and give the same bytes for any thread count; missing, damaged or
# mismatched files exit 1 naming the file. The logits' parity with
# torchvision (1e-4) is checked on the same code path in test_checkpoint.c.
. tests/cli/lib.sh

F=tests/fixtures/checkpoint
R3D="--model $F/r3d_tiny.yaml --weights $F/r3d_tiny_tv.safetensors"
R21="--model $F/r2plus1d_tiny.yaml --weights $F/r2plus1d_tiny_tv.safetensors"
IN="--input $F/input.safetensors"

# ---- command line ----
expect forward-listed 0 "forward +run a trained network" -- "$DOJO" --help
expect forward-help 0 "^usage: dojo forward --weights" -- "$DOJO" forward --help
expect forward-no-weights 2 "--weights is required \(dojo forward\)" -- "$DOJO" forward $IN --output "$TMP/y"
expect forward-no-input 2 "--input is required" -- "$DOJO" forward $R3D --output "$TMP/y"
expect forward-no-output 2 "--output is required" -- "$DOJO" forward $R3D $IN
expect forward-bad-threads 2 "option '--threads'" -- "$DOJO" forward $R3D $IN --output "$TMP/y" --threads many
expect forward-negative-threads 2 "option '--threads'" -- "$DOJO" forward $R3D $IN --output "$TMP/y" --threads -1
expect forward-unknown-option 2 "unknown option '--weight'" -- "$DOJO" forward --weight x $IN --output "$TMP/y"
expect forward-positional 2 "unexpected argument" -- "$DOJO" forward $R3D $IN --output "$TMP/y" extra

if [ ! -f "$F/r3d_tiny_tv.safetensors" ]; then
    skip forward-fixtures "tests/fixtures/checkpoint not found (run from the repository root)"
    finish; exit $?
fi

# ---- torchvision state dicts ----
expect forward-r3d 0 "" -- "$DOJO" forward $R3D $IN --output "$TMP/r3d_1.safetensors" --threads 1
check forward-r3d-logits-shape grep -aq '"logits":{"dtype":"F32","shape":\[2,5\]' "$TMP/r3d_1.safetensors"
expect forward-r3d-threads 0 "" -- "$DOJO" forward $R3D $IN --output "$TMP/r3d_3.safetensors" --threads 3
check forward-same-bytes-any-threads cmp -s "$TMP/r3d_1.safetensors" "$TMP/r3d_3.safetensors"
expect forward-r2plus1d-no-nbt 0 "" -- "$DOJO" forward $R21 $IN --output "$TMP/r21.safetensors"
check forward-models-differ sh -c "! cmp -s '$TMP/r3d_1.safetensors' '$TMP/r21.safetensors'"
check forward-no-temp-left sh -c "[ \$(ls -A '$TMP' | grep -c tmp) = 0 ]"

# ---- failures: exit 1, naming the file ----
expect forward-model-mismatch 1 "^dojo: error: tensor 'stem.0.weight' has shape \(6,3,1,7,7\) in the checkpoint but \(8,3,3,7,7\) in the model .*r2plus1d_tiny_tv.safetensors\)" -- \
    "$DOJO" forward --model $F/r3d_tiny.yaml --weights $F/r2plus1d_tiny_tv.safetensors $IN --output "$TMP/bad.safetensors"
check forward-mismatch-writes-nothing test ! -e "$TMP/bad.safetensors"
expect forward-missing-weights 1 "^dojo: error: .*\($TMP/none.safetensors\)" -- \
    "$DOJO" forward --model $F/r3d_tiny.yaml --weights "$TMP/none.safetensors" $IN --output "$TMP/y"
expect forward-missing-input 1 "^dojo: error: .*\($TMP/none.safetensors\)" -- \
    "$DOJO" forward $R3D --input "$TMP/none.safetensors" --output "$TMP/y"
expect forward-unknown-model 1 "^dojo: error: .*no_such_model" -- \
    "$DOJO" forward --model no_such_model --weights $F/r3d_tiny_tv.safetensors $IN --output "$TMP/y"
expect forward-no-model-named 1 "^dojo: error: the weights name no model; give one \(--model\)" -- \
    "$DOJO" forward --weights $F/r3d_tiny_tv.safetensors $IN --output "$TMP/y"
expect forward-no-input-tensor 1 "^dojo: error: .*'input'.*r3d_tiny_tv.safetensors" -- \
    "$DOJO" forward $R3D --input $F/r3d_tiny_tv.safetensors --output "$TMP/y"
head -c 20000 $F/r3d_tiny_tv.safetensors >"$TMP/truncated.safetensors"
expect forward-truncated-weights 1 "^dojo: error: .*truncated.safetensors\)" -- \
    "$DOJO" forward --model $F/r3d_tiny.yaml --weights "$TMP/truncated.safetensors" $IN --output "$TMP/y"
# an input of the wrong rank: a hand-made safetensors file holding input (2,3)
hdr='{"input":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}'
printf "$(printf '\\%03o' ${#hdr})\0\0\0\0\0\0\0%s" "$hdr" >"$TMP/rank2.safetensors"
head -c 24 /dev/zero >>"$TMP/rank2.safetensors"
expect forward-input-rank 1 "^dojo: error: tensor 'input' has shape \(2,3\); expected \(N,3,T,H,W\).*rank2.safetensors\)" -- \
    "$DOJO" forward $R3D --input "$TMP/rank2.safetensors" --output "$TMP/y"
expect forward-output-folder-missing 1 "^dojo: error: .*$TMP/no/dir/y.safetensors" -- \
    "$DOJO" forward $R3D $IN --output "$TMP/no/dir/y.safetensors"
finish
