#!/usr/bin/env bash
# Runs nnc, PyTorch, JAX and ONNX Runtime interleaved on the standard tasks, pinned to 1 core
# with 1 thread, then 2 cores with 2 threads: nnc, pytorch, nnc, jax, onnxruntime, nnc again for
# each (JAX and ONNX Runtime only where they are installed, ONNX Runtime for inference only). JSON lines go to stdout (and to $OUT if set); progress and
# a per-run note of how busy the rest of the machine was go to stderr.
#
#   bench/run_interleaved.sh                       # eager PyTorch only
#   MODE=both bench/run_interleaved.sh             # eager and torch.compile
#   PYTHON=/tmp/torchvenv/bin/python TASK=mlp_train OUT=/tmp/bench.jsonl bench/run_interleaved.sh
#   ADAM=fused bench/run_interleaved.sh            # PyTorch with Adam(fused=True)
#   PEERS=pytorch bench/run_interleaved.sh         # PyTorch only, not JAX or ONNX Runtime
#   NNC_BIN=/tmp/bench_tasks bench/run_interleaved.sh  # an nnc binary built earlier; no build
#   WAIT_QUIET=1 bench/run_interleaved.sh          # wait for other processes to go idle before each run
#   BASELINE_BIN=/tmp/bench_old bench/run_interleaved.sh  # also an earlier nnc build, labelled
#                                                  # `nnc_before`, for before/after in one run
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-/tmp/torchvenv/bin/python}
TASK=${TASK:-all}
MODE=${MODE:-eager}
OUT=${OUT:-/dev/null}
ADAM=${ADAM:-default}
PEERS=${PEERS:-pytorch jax onnxruntime}

# Run from a copy, so that a concurrent rebuild of target/ cannot swap the binary mid-run.
# NNC_BIN=path skips the build and runs that binary instead.
NNC=$(mktemp /tmp/bench_tasks.XXXXXX)
trap 'rm -f "$NNC"' EXIT
if [[ -n ${NNC_BIN:-} ]]; then
    cp "$NNC_BIN" "$NNC"
else
    cargo build --release --example bench_tasks >&2
    cp target/release/examples/bench_tasks "$NNC"
fi
chmod +x "$NNC"

busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8, $9}' /proc/stat; }

# With WAIT_QUIET=1, waits (at most 5 minutes) until other processes have used less than a tenth
# of a core over 2 seconds, so that a concurrent build does not land inside a measurement.
wait_quiet() {
    [[ ${WAIT_QUIET:-0} == 1 ]] || return 0
    local deadline=$((SECONDS + 300)) b a
    while ((SECONDS < deadline)); do
        b=$(busy_jiffies)
        sleep 2
        a=$(busy_jiffies)
        if awk -v b="$b" -v a="$a" -v hz="$(getconf CLK_TCK)" \
            'BEGIN { split(b, B, " "); split(a, A, " "); exit !((A[1] - B[1]) / hz / 2 < 0.1) }'; then
            return 0
        fi
    done
    echo "# machine still busy after 5 minutes; measuring anyway" >&2
}

# run LABEL CMD...: runs CMD, then reports how many cores' worth of CPU time other processes
# (and the hypervisor, as steal) took while it ran.
run() {
    local label=$1
    shift
    local before after tfile
    wait_quiet
    before=$(busy_jiffies)
    tfile=$(mktemp)
    # LABEL renames the framework of nnc's lines, so that two builds stay apart in one file.
    /usr/bin/time -f '%e %U %S' -o "$tfile" "$@" |
        sed "s/\"framework\":\"nnc\"/\"framework\":\"${LABEL:-nnc}\"/" | tee -a "$OUT"
    after=$(busy_jiffies)
    read -r real user sys <"$tfile"
    rm -f "$tfile"
    awk -v b="$before" -v a="$after" -v real="$real" -v own="$user $sys" -v label="$label" \
        -v hz="$(getconf CLK_TCK)" 'BEGIN {
            split(b, B, " "); split(a, A, " "); split(own, O, " ");
            others = ((A[1] - B[1]) / hz - O[1] - O[2]) / real;
            steal = (A[2] - B[2]) / hz / real;
            printf "# %s: %.1f s; other processes used %.2f cores, steal %.2f cores\n",
                label, real, (others < 0 ? 0 : others), steal
        }' >&2
}

# BASELINE_BIN=path adds an earlier nnc build, run before each run of the current one.
BASE=""
if [[ -n ${BASELINE_BIN:-} ]]; then
    BASE=$(mktemp /tmp/bench_tasks_before.XXXXXX)
    trap 'rm -f "$NNC" "$BASE"' EXIT
    cp "$BASELINE_BIN" "$BASE"
    chmod +x "$BASE"
fi

# nnc_run LABEL THREADS CPUS: the baseline build (if any), then the current one.
nnc_run() {
    if [[ -n $BASE ]]; then
        LABEL=nnc_before run "nnc before, $1" taskset -c "$3" "$BASE" --task "$TASK" --threads "$2"
    fi
    run "nnc, $1" taskset -c "$3" "$NNC" --task "$TASK" --threads "$2"
}

# has MODULE: whether $PYTHON can import MODULE and the peer is in $PEERS.
has() {
    [[ " $PEERS " == *" $1 "* ]] && "$PYTHON" -c "import $2" 2>/dev/null
}

for spec in "1 0" "2 0,1"; do
    read -r threads cpus <<<"$spec"
    nnc_run "$threads thread(s)" "$threads" "$cpus"
    if has pytorch torch; then
        run "pytorch ($MODE), $threads thread(s)" taskset -c "$cpus" "$PYTHON" bench/pytorch_tasks.py \
            --task "$TASK" --threads "$threads" --mode "$MODE" --adam "$ADAM"
        nnc_run "$threads thread(s), again" "$threads" "$cpus"
    fi
    # JAX has the MLP tasks only; ONNX Runtime inference only.
    if has jax jax && [[ $TASK == all || $TASK == mlp_* || $TASK == iris_* ]]; then
        run "jax (jit), $threads thread(s)" taskset -c "$cpus" "$PYTHON" bench/jax_tasks.py \
            --task "$TASK" --threads "$threads"
    fi
    if has onnxruntime onnxruntime && [[ $TASK == all || $TASK == *_infer ]]; then
        run "onnxruntime, $threads thread(s)" taskset -c "$cpus" "$PYTHON" bench/onnx_tasks.py \
            --task "$TASK" --threads "$threads"
    fi
    if has jax jax || has onnxruntime onnxruntime; then
        nnc_run "$threads thread(s), last" "$threads" "$cpus"
    fi
done
