#!/usr/bin/env bash
# Adds up every `test result:` line cargo printed into one closing line, so the end of
# `make test` says how many tests ran in all (cargo's own last line is often a crate's
# 0-test doc-test run).
set -euo pipefail
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed/) p += $i
         if ($(i+1) ~ /^failed/) f += $i
         if ($(i+1) ~ /^ignored/) s += $i
       }
     }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s; exit (f > 0 || p == 0) }' "$1"
