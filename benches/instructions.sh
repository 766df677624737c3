#!/usr/bin/env bash
# Instructions and heap allocations per event on the stdin -> durable journal -> Splunk HEC
# path, for vowguard and for the bare reference forwarder, on the same input and against the
# same local counting receiver. Unlike seconds, instruction counts do not move with the
# load on a shared machine, so two builds can be compared on a busy box.
#
# Each program runs twice under `valgrind --tool=callgrind`, once with SMALL events and once
# with SMALL + EVENTS; the per-event figures are the differences divided by EVENTS, so
# start-up and shutdown (config, journal open, thread pools, the final drain) drop out.
# Instructions are callgrind's total Ir; allocations are the calls to malloc, calloc,
# realloc and the aligned allocators that callgrind recorded (benches/callgrind_totals.py).
#
# Usage: benches/instructions.sh [BIN_DIR] [EVENTS] [SMALL]
#   BIN_DIR: where `vowguard`, `reference_forwarder` and `siem_receiver` are
#            (default: $CARGO_TARGET_DIR/bench-fast, built with
#             `cargo build --profile bench-fast -p vowguard-runtime --bin vowguard -p vowguard-bench --bins`)
#   EVENTS:  events measured (default 10000); SMALL: the baseline run's events (default 1000)
# Environment: VOWGUARD_BIN to measure another vowguard binary (e.g. an older build);
#   ONLY=vowguard|reference to measure one program.
#
# Notes: valgrind runs the program's threads one at a time, so group commits and batch
# sizes are not those of a native run on two cores (they are those of one core); the
# figure counts user-space instructions of the program's own process (not the kernel's,
# not the receiver's).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$root/target}/bench-fast}
events=${2:-10000}
small=${3:-1000}
vowguard=${VOWGUARD_BIN:-$bin/vowguard}
only=${ONLY:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/vowguard-instructions.XXXXXX")
trap 'kill "$receiver_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# The events of `cargo xtask bench compare` (xtask/src/bench.rs, write_events).
gen() {
    python3 - "$1" <<'EOF'
import sys
n = int(sys.argv[1])
out = sys.stdout
for i in range(n):
    outcome = "success" if i % 7 == 0 else "failure"
    out.write(
        '{"id":"bench-%08d","timestamp":"2026-06-20T11:30:00.123Z","category":"authentication","action":"login",'
        '"outcome":"%s","severity":"medium","risk_score":%d,'
        '"message":"invalid password for planner account, attempt %d from a known proxy network",'
        '"user_id":"planner-%d","user_name":"alex.planner@example.org","source_ip":"203.0.%d.%d",'
        '"user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",'
        '"resource_type":"accounts","resource_id":"acct-%d","wedding_id":"w-2026-06-20-%d",'
        '"labels":{"env":"prod","service":"auth-gateway"},"attributes":{"session_id":"s-%x","mfa":false}}\n'
        % (i, outcome, i % 100, i, i % 500, (i // 256) % 256, i % 256, i % 500, i % 40, i)
    )
EOF
}
gen "$small" >"$work/small.ndjson"
gen "$((small + events))" >"$work/large.ndjson"

coproc RECEIVER { exec "$bin/siem_receiver"; }
receiver_pid=$RECEIVER_PID
read -r _ _ address _ <&"${RECEIVER[0]}"
url="http://$address"
echo "receiver: $url; events: $events (baseline run: $small)"

# run PROGRAM INPUT -> prints "instructions allocations"
run() {
    local program=$1 input=$2 dir
    dir=$(mktemp -d "$work/run.XXXXXX")
    local cmd
    case $program in
    vowguard)
        printf 'data_dir = "%s/data"\n[sources.in]\ntype = "stdin"\n[sinks.hec]\ntype = "splunk_hec"\nendpoint = "%s"\ntoken = { env = "BENCH_HEC_TOKEN" }\n' \
            "$dir" "$url" >"$dir/vowguard.toml"
        cmd=("$vowguard" run --config "$dir/vowguard.toml")
        ;;
    reference) cmd=("$bin/reference_forwarder" "$url") ;;
    esac
    BENCH_HEC_TOKEN=bench-token RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$dir/out" \
        "${cmd[@]}" <"$input" >"$dir/stdout" 2>"$dir/stderr" || { cat "$dir/stderr" >&2; exit 1; }
    python3 "$root/benches/callgrind_totals.py" "$dir/out"
    if [ -n "${KEEP:-}" ]; then cp "$dir/out" "$KEEP.$program.$(basename "$input" .ndjson)"; fi
    rm -rf "$dir"
}

printf '| program | instructions/event | allocations/event |\n|---|---:|---:|\n'
for program in vowguard reference; do
    if [ -n "$only" ] && [ "$only" != "$program" ]; then continue; fi
    read -r i_small a_small < <(run $program "$work/small.ndjson")
    read -r i_large a_large < <(run $program "$work/large.ndjson")
    python3 -c "print('| $program | %.0f | %.2f |' % (($i_large - $i_small) / $events, ($a_large - $a_small) / $events))"
done
