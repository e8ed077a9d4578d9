#!/usr/bin/env bash
# Adds up every `test result:` line cargo printed into one closing line, so the end of
# `make test` says how many tests ran in all (cargo's own last line is often a crate's
# 0-test doc-test run). A test that printed `SKIPPED: <test>: <reason>` (it needs the real node
# the machine could not run; tests/src/realnode.rs) returned early and cargo counted it passed:
# it is counted skipped here instead, and the reasons are listed.
set -euo pipefail
awk '/SKIPPED: / { k++; sub(/.*SKIPPED: /, ""); reasons[k] = $0; next }
     /^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed/) p += $i
         if ($(i+1) ~ /^failed/) f += $i
         if ($(i+1) ~ /^ignored/) s += $i
       }
     }
     END { for (i = 1; i <= k; i++) print "skipped: " reasons[i]
           p -= k; s += k
           printf "tests: %d passed, %d failed, %d skipped\n", p, f, s; exit (f > 0 || p == 0) }' "$1"
