#!/usr/bin/env bash
# What the test suite costs: wall time and the CPU of every process it runs (the pytest
# workers, the servers and tools they start, Chromium, Playwright's driver and PostgreSQL's
# backends), read from BSD process accounting. Needs root and Debian's `acct` package.
#
#   [WORKERS=N] bench/suite_cost.sh [TREE]   # TREE: a checkout to measure (default: this one);
#                                            # WORKERS: pytest-xdist workers (default 2, as make test)
#
# Compare two versions by alternating runs of each on the same host (it is shared and its
# speed drifts by ±10 % within an hour): old tree, new tree, old, new.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tree=$(cd "${1:-$here}" && pwd)
command -v accton >/dev/null || { echo "needs process accounting: apt-get install acct" >&2; exit 2; }
log=$(mktemp) acct=$(mktemp)
export IIOT_TEST_DATABASE_URL=${IIOT_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
export IIOT_TEST_REDIS_URL=${IIOT_TEST_REDIS_URL:-redis://127.0.0.1:6379/11}
export IIOT_REQUIRE_UI_TESTS=1 PYTHONPATH="$tree/src" PYTHONDONTWRITEBYTECODE=
accton "$acct" >/dev/null
trap 'accton off >/dev/null' EXIT
start=$(date +%s.%N)
status=0
(cd "$tree" && "$here/.venv/bin/pytest" -q -n "${WORKERS:-2}" --dist worksteal -p no:cacheprovider) >"$log" 2>&1 || status=$?
end=$(date +%s.%N)
accton off >/dev/null
trap - EXIT
echo "$(tail -1 "$log")"
echo "wall $(echo "$end - $start" | bc) s"
# By command name: a process is named after its last thread to exit (Chromium's show as
# HangWatcher, ThreadPool..., node's as libuv-worker).
dump-acct "$acct" | awk -F'|' '{ gsub(/ /, "", $1); t += ($3 + $4) / 100 } END { printf "CPU %.1f s in all\n", t }'
dump-acct "$acct" | awk -F'|' '
  { gsub(/ /, "", $1); by[$1] += ($3 + $4) / 100 }
  END { for (c in by) if (by[c] >= 1) printf "%8.1f s  %s\n", by[c], c }' | sort -rn
rm -f "$acct" "$log"
exit $status
