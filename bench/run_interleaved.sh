#!/usr/bin/env bash
# Runs nnc and PyTorch interleaved on the standard tasks, pinned to 1 core then 2 cores:
# nnc, pytorch, nnc again for each. JSON lines go to stdout (and to $OUT if set); progress and
# a per-run note of how busy the rest of the machine was go to stderr.
#
#   bench/run_interleaved.sh                       # eager PyTorch only
#   MODE=both bench/run_interleaved.sh             # eager and torch.compile
#   PYTHON=/tmp/torchvenv/bin/python TASK=mlp_train OUT=/tmp/bench.jsonl bench/run_interleaved.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-/tmp/torchvenv/bin/python}
TASK=${TASK:-all}
MODE=${MODE:-eager}
OUT=${OUT:-/dev/null}

cargo build --release --example bench_tasks >&2
# Run from a copy, so that a concurrent rebuild of target/ cannot swap the binary mid-run.
NNC=$(mktemp /tmp/bench_tasks.XXXXXX)
trap 'rm -f "$NNC"' EXIT
cp target/release/examples/bench_tasks "$NNC"
chmod +x "$NNC"

busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8, $9}' /proc/stat; }

# run LABEL CMD...: runs CMD, then reports how many cores' worth of CPU time other processes
# (and the hypervisor, as steal) took while it ran.
run() {
    local label=$1
    shift
    local before after tfile
    before=$(busy_jiffies)
    tfile=$(mktemp)
    /usr/bin/time -f '%e %U %S' -o "$tfile" "$@" | tee -a "$OUT"
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

for spec in "1 0" "2 0,1"; do
    read -r threads cpus <<<"$spec"
    run "nnc, $threads thread(s)" taskset -c "$cpus" "$NNC" --task "$TASK" --threads "$threads"
    run "pytorch ($MODE), $threads thread(s)" taskset -c "$cpus" "$PYTHON" bench/pytorch_tasks.py \
        --task "$TASK" --threads "$threads" --mode "$MODE"
    run "nnc again, $threads thread(s)" taskset -c "$cpus" "$NNC" --task "$TASK" --threads "$threads"
done
