#!/usr/bin/env bash
# make bench: measure this machine's PostgreSQL with pgbench (-N, 8 clients,
# 20 s, on a throwaway cluster with the stack's durable settings), then run
# the whole approval chain under loadgen, and print both figures and their
# ratio (applications/s per 1000 pgbench TPS), which compares across
# machines better than either number alone.
#
# Environment:
#   BENCH_N      applications (default 20000)
#   BENCH_RATE   applications/s offered, 0 = as fast as possible (default 0)
#   BENCH_ARGS   more loadgen flags, e.g. "-batch 500 -concurrency 4"
#   BENCH_OUT    where results go (default .cache/bench/<timestamp>)
#   BENCH_TARGETS=1  also run the REST latency scenario (single submissions
#                over REST at 200/s) and the 50,000-item single batch, and
#                print every figure of docs/performance.md next to its
#                target (`make bench-targets`: 100,000 offered at 300/s)
#   BIN          built binaries (default bin; `make bench` builds them)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
BENCH_N=${BENCH_N:-20000}
BENCH_RATE=${BENCH_RATE:-0}
BENCH_ARGS=${BENCH_ARGS:-}
OUT=${BENCH_OUT:-.cache/bench/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

for b in devstack loadgen application school-review bureau-review finance-confirmation payout banksim; do
  [[ -x "$BIN/$b" ]] || { echo "bench: $BIN/$b is missing; run make build" >&2; exit 1; }
done
PGBENCH=$(command -v pgbench || true)
if [[ -z "$PGBENCH" ]]; then
  PGBENCH=$(ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -n 1 || true)
fi
[[ -n "$PGBENCH" ]] || { echo "bench: pgbench not found (install postgresql-contrib / postgresql-client)" >&2; exit 1; }

echo "== machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, load average $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== pgbench -N -c 8 -j 2 -T 20 (scale 10) on a throwaway cluster, fsync on"
# A private devstack directory, so the throwaway cluster cannot clash with a
# concurrent `make test`; DATABASE_URL is unset so a shared server is never touched.
env -u DATABASE_URL AID_DEV_DIR="$OUT/devstack" "$BIN/devstack" exec -- \
  bash -c "'$PGBENCH' -q -i -s 10 \"\$DATABASE_URL\" 2>&1 | tail -n 1 && '$PGBENCH' -N -c 8 -j 2 -T 20 \"\$DATABASE_URL\"" \
  2>&1 | tee "$OUT/pgbench.txt"
rm -rf "$OUT/devstack"
TPS=$(awk '/^tps = / {print $3; exit}' "$OUT/pgbench.txt")
[[ -n "$TPS" ]] || { echo "bench: no TPS in pgbench's output" >&2; exit 1; }

echo
echo "== loadgen -n $BENCH_N -rate $BENCH_RATE $BENCH_ARGS"
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
"$BIN/loadgen" -bin "$BIN" -n "$BENCH_N" -rate "$BENCH_RATE" -pgbench-tps "$TPS" -json "$OUT/loadgen.json" $BENCH_ARGS \
  2> >(tee "$OUT/loadgen.log" >&2) | tee "$OUT/loadgen.txt"

if [[ "${BENCH_TARGETS:-}" == 1 ]]; then
  echo
  echo "== loadgen -n 12000 -rest -batch 1 -rate 200 -concurrency 32 -submit-only"
  "$BIN/loadgen" -bin "$BIN" -n 12000 -rest -batch 1 -rate 200 -concurrency 32 -submit-only -json "$OUT/rest.json" \
    2> >(tee "$OUT/rest.log" >&2) | tee "$OUT/rest.txt"
  echo
  echo "== loadgen -n 50000 -single-batch -batch 500"
  "$BIN/loadgen" -bin "$BIN" -n 50000 -single-batch -batch 500 -json "$OUT/single-batch.json" \
    2> >(tee "$OUT/single-batch.log" >&2) | tee "$OUT/single-batch.txt"
fi

E2E=$(jq -r '.end_to_end_per_s' "$OUT/loadgen.json")
echo
echo "== summary"
awk -v tps="$TPS" -v e2e="$E2E" 'BEGIN {
  printf "pgbench:     %.0f TPS (-N, 8 clients, 20 s)\n", tps
  printf "end to end:  %.1f applications/s (first submission -> last application paid or rejected)\n", e2e
  if (tps > 0) printf "ratio:       %.1f applications/s per 1000 pgbench TPS\n", e2e / tps * 1000
}'
if [[ "${BENCH_TARGETS:-}" == 1 ]]; then
  services='["application","school-review","bureau-review","finance-confirmation","payout"]'
  jq -r -n --slurpfile chain "$OUT/loadgen.json" --slurpfile rest "$OUT/rest.json" --slurpfile batch "$OUT/single-batch.json" \
    --argjson services "$services" '
    def met(c): if c then "yes" else "NO" end;
    def rss(r): [r.processes[] | select(.name as $n | $services | index($n)) | .peak_rss_mib] | max;
    ($chain[0].end_to_end_per_s) as $e2e
    | ([$rest[0].report.steps[] | select(.step == "submit")][0].p99_ms) as $p99
    | ($batch[0].single_batch.confirm_to_all_paid_s) as $paid
    | ([rss($chain[0]), rss($rest[0]), rss($batch[0])] | max) as $mem
    | ($chain[0].outbox_backlog.drain_after_submit_s) as $drain
    | "",
      "== against the targets (docs/performance.md)",
      "end to end, \($chain[0].config.N) applications:     \($e2e * 10 | round / 10) applications/s   (target >= 250)   \(met($e2e >= 250))",
      "REST submit at 200/s, p99:           \($p99) ms            (target < 25)     \(met($p99 < 25))",
      "50,000-item batch, confirm -> paid:  \($paid) s              (target < 60)     \(met($paid < 60))",
      "largest service RSS:                 \($mem | round) MiB             (target < 256)    \(met($mem < 256))",
      "outbox drained after the load:       \(if $drain == null then "never" else "\($drain) s" end)              (target <= 5)     \(met($drain != null and $drain <= 5))"
  '
fi
echo "results:     $OUT"
