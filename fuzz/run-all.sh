#!/usr/bin/env bash
# Runs every fuzz target to RUNS executions (default 10 million), one after another, from its seeds and its
# growing corpus, and prints a summary line per target: executions, seconds, executions per second, coverage.
# Usage: fuzz/run-all.sh [RUNS] [TARGET...]     (nightly toolchain and cargo-fuzz needed)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
runs="${1:-10000000}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(canonical_request cookies forms return_path oidc_request config import)
mkdir -p logs
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    started=$SECONDS
    cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
        -runs="$runs" -rss_limit_mb=4096 -print_final_stats=1 >"logs/$target.log" 2>&1 || {
        echo "$target: FAILED (see fuzz/logs/$target.log and fuzz/artifacts/$target/)"
        continue
    }
    elapsed=$((SECONDS - started))
    done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "logs/$target.log" | tail -n 1)"
    execs="$(grep -E 'stat::number_of_executed_units' "logs/$target.log" | awk '{print $2}')"
    cov="$(printf '%s' "$done_line" | grep -o 'cov: [0-9]*' | awk '{print $2}')"
    corpus="$(ls "corpus/$target" | wc -l)"
    echo "$target: $execs executions in ${elapsed}s ($((execs / (elapsed > 0 ? elapsed : 1)))/s), coverage $cov, corpus $corpus"
done
