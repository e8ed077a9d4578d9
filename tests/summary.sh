#!/usr/bin/env bash
# Adds up every `test result:` line cargo printed into one closing line, so the end of
# `make test` says how many tests ran in all (cargo's own last line is often a crate's
# 0-test doc-test run). A test that reported `SKIPPED <test>: <reason>` (jockey_e2e::skip)
# passed as far as libtest knows; it is counted as skipped here, never as passed, and its
# reason is repeated.
set -euo pipefail
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed/) p += $i
         if ($(i+1) ~ /^failed/) f += $i
         if ($(i+1) ~ /^ignored/) s += $i
       }
     }
     /^SKIPPED [^ ]+: / { k += 1; why[k] = $0 }
     END {
       for (i = 1; i <= k; i++) print why[i]
       printf "tests: %d passed, %d failed, %d skipped\n", p - k, f, s + k
       exit (f > 0 || p - k <= 0)
     }' "$1"
