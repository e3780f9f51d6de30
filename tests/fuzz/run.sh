#!/usr/bin/env bash
# Builds the fuzz targets (stable toolchain, libFuzzer through libfuzzer-sys, sanitizer-coverage
# flags that work on stable) and runs one target, or all of them in turn, for SECONDS each on its
# saved corpus.
#
#   tests/fuzz/run.sh TARGET SECONDS [extra libFuzzer flags]
#   tests/fuzz/run.sh all SECONDS
#   tests/fuzz/run.sh build
#   tests/fuzz/run.sh minimize TARGET      # merge the corpus into a minimal one (-merge=1)
#
# Targets: request_decoding batch_validation segment_recovery index_loading offsets_records
# config_loading metadata_loading decompression (bodies in tests/fuzz/src/targets.rs).
#
# New inputs that add coverage go to tests/fuzz/work/TARGET/ (not saved; minimize them into
# tests/fuzz/corpus/TARGET/ with `minimize`). A crash is written to tests/fuzz/crashes/TARGET/;
# fix it and keep the file there: tests/fuzz_replay.rs replays it in the normal suite.
# Environment: FUZZ_MAX_TOTAL_EXECS caps executions (-runs), FUZZ_RSS_MB the RSS limit
# (default 2048).
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$FUZZ_DIR/../.." && pwd)"
TARGETS=(request_decoding batch_validation segment_recovery index_loading offsets_records
    config_loading metadata_loading decompression)
HOST="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="$ROOT/target/fuzz"
BIN_DIR="$CARGO_TARGET_DIR/$HOST/release"

build() {
    # --target keeps these flags off build scripts and proc macros (they run on the host).
    RUSTFLAGS="-Cpasses=sancov-module \
        -Cllvm-args=-sanitizer-coverage-level=4 \
        -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
        -Cllvm-args=-sanitizer-coverage-pc-table \
        -Cllvm-args=-sanitizer-coverage-trace-compares \
        --cfg fuzzing -Cdebug-assertions -Coverflow-checks -Cforce-frame-pointers=yes" \
        cargo build --release --manifest-path "$FUZZ_DIR/Cargo.toml" --target "$HOST" --bins
}

check_target() {
    local t
    for t in "${TARGETS[@]}"; do [[ "$t" == "$1" ]] && return 0; done
    echo "unknown target '$1' (targets: ${TARGETS[*]})" >&2
    exit 2
}

run_one() {
    local target="$1" seconds="$2"
    shift 2
    local corpus="$FUZZ_DIR/corpus/$target" work="$FUZZ_DIR/work/$target"
    local crashes="$FUZZ_DIR/crashes/$target" log="$FUZZ_DIR/work/$target.log"
    mkdir -p "$corpus" "$work" "$crashes"
    local runs=()
    [[ -n "${FUZZ_MAX_TOTAL_EXECS:-}" ]] && runs=(-runs="$FUZZ_MAX_TOTAL_EXECS")
    echo "== $target: ${seconds}s, corpus $(ls "$corpus" | wc -l) files ($(du -sk "$corpus" | cut -f1) KiB)"
    local started=$SECONDS status=0
    "$BIN_DIR/$target" "$work" "$corpus" -max_total_time="$seconds" "${runs[@]}" \
        -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -malloc_limit_mb="${FUZZ_RSS_MB:-2048}" \
        -max_len=1048576 -len_control=100 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$crashes/" "$@" >"$log" 2>&1 || status=$?
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log" | tail -2 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
    echo "   wall time $((SECONDS - started))s, new inputs in $work: $(ls "$work" | wc -l)"
    if [[ $status -ne 0 ]]; then
        echo "   FINDING (exit $status), see $log and $crashes:"
        grep -E 'ERROR: libFuzzer|panicked at|SUMMARY' "$log" | head -5 || true
        return 1
    fi
    echo "   no findings"
}

minimize() {
    local target="$1" corpus="$FUZZ_DIR/corpus/$1" work="$FUZZ_DIR/work/$1"
    local merged
    merged="$(mktemp -d)"
    mkdir -p "$work"
    "$BIN_DIR/$target" -merge=1 -rss_limit_mb=2048 -max_len=1048576 "$merged" "$corpus" "$work"
    rm -rf "$corpus"
    mv "$merged" "$corpus"
    chmod 755 "$corpus"
    echo "$target: corpus $(ls "$corpus" | wc -l) files, $(du -sk "$corpus" | cut -f1) KiB"
}

case "${1:-}" in
build)
    build
    ;;
minimize)
    check_target "${2:?target}"
    build
    minimize "$2"
    ;;
all)
    seconds="${2:?seconds}"
    build
    failed=0
    for t in "${TARGETS[@]}"; do run_one "$t" "$seconds" || failed=1; done
    exit $failed
    ;;
"" | -h | --help)
    sed -n '2,20p' "$0"
    ;;
*)
    check_target "$1"
    target="$1" seconds="${2:?seconds}"
    shift 2
    build
    run_one "$target" "$seconds" "$@"
    ;;
esac
