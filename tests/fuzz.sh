#!/usr/bin/env bash
# `make fuzz`: runs every cargo fuzz target (fuzz/fuzz_targets) for FUZZ_RUNS executions (default
# ten million) or FUZZ_SECONDS, whichever comes first, growing fuzz/corpus/<target>; then
# minimises each corpus (cargo fuzz cmin) so the committed one stays small. Prints the executions
# reached per target; a crash stops the run and leaves its reproducer in fuzz/artifacts/<target>:
# copy it to fuzz/regressions/<target>/ with the fix, so `make test` replays it for ever.
# FUZZ_TARGETS limits the targets (space-separated); FUZZ_JOBS runs that many workers each.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=${FUZZ_RUNS:-10000000}
seconds=${FUZZ_SECONDS:-7200}
jobs=${FUZZ_JOBS:-1}
targets=${FUZZ_TARGETS:-$(cd fuzz/fuzz_targets && ls ./*.rs | sed 's|^\./||; s|\.rs$||')}
logs=$root/.cache/fuzz
mkdir -p "$logs"
# No sanitizer: the code under test is safe Rust, and ASan would halve the executions. Debug
# assertions on, so an overflow is a crash rather than a silent wrap.
flags=(--features libfuzzer -s none -a)
cargo +nightly fuzz build "${flags[@]}"
summary=()
# libFuzzer's -jobs writes each worker's output (and final stats) to fuzz-N.log in the current
# directory: only asked for when more than one worker is wanted.
parallel=()
[ "$jobs" -le 1 ] || parallel=(-jobs="$jobs" -workers="$jobs")
for t in $targets; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  echo ">> fuzz $t: up to $runs executions or ${seconds}s" >&2
  rc=0
  cargo +nightly fuzz run "${flags[@]}" "$t" "fuzz/corpus/$t" -- \
    -runs="$runs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    ${parallel[@]+"${parallel[@]}"} -print_final_stats=1 >"$logs/$t.log" 2>&1 || rc=$?
  # libFuzzer's final stats (one block per worker) carry the number of executions; with workers
  # the parent echoes them too, so they are counted from the workers' own logs.
  counted=("$logs/$t.log")
  [ ${#parallel[@]} -eq 0 ] || counted=(fuzz-*.log)
  execs=$(cat "${counted[@]}" 2>/dev/null | awk '/stat::number_of_executed_units:/ { n += $2 } END { print n + 0 }')
  if [ ${#parallel[@]} -gt 0 ]; then cat fuzz-*.log >>"$logs/$t.log" 2>/dev/null || true; rm -f fuzz-*.log; fi
  if [ "$rc" -ne 0 ]; then
    echo "fuzz $t FAILED (exit $rc) after ${execs:-?} executions; see $logs/$t.log and fuzz/artifacts/$t" >&2
    tail -40 "$logs/$t.log" >&2
    exit 1
  fi
  cargo +nightly fuzz cmin "${flags[@]}" "$t" "fuzz/corpus/$t" >"$logs/$t.cmin.log" 2>&1
  summary+=("$t: ${execs:-?} executions, 0 crashes, 0 timeouts, corpus $(ls "fuzz/corpus/$t" | wc -l) inputs ($(date -u +%F))")
done
printf '%s\n' "${summary[@]}" | tee "$logs/summary.txt"
