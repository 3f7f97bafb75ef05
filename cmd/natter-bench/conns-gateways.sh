#!/usr/bin/env bash
# conns-gateways.sh: idle connections spread over several `natter gateway`
# processes against one `natter nats` (plus `natter presence`), each role
# in its own process as in production. Prints the natter-bench result and,
# once every connection is held and has settled: each gateway's RSS, the
# NATS server's RSS and subscription count, the load average.
#
#   N=100000 GATEWAYS=6 PROCS=6 cmd/natter-bench/conns-gateways.sh   # issue 19
#   N=19000 GATEWAYS=1 PROCS=2 cmd/natter-bench/conns-gateways.sh    # memory per connection
#
# Every listener is on HOST (127.0.1.1), not 127.0.0.1: a port of the
# ephemeral range (ip_local_port_range) may be the local end of an
# outgoing connection from 127.0.0.1, and the clients' sockets take tens
# of thousands of them.
#
# Environment (defaults): NATTER and NATTER_BENCH, the binaries
# (natter, natter-bench on PATH); N (100000); GATEWAYS (6); PROCS, the
# client processes, each ≤ 19,000 sockets (6); PORT, the first of the
# ports used on HOST: PORT…PORT+2 NATS, PORT+3 presence, PORT+10+i
# gateway i, PORT+30+i its metrics, PORT+50+i its pprof (36000);
# SETTLE (30s) and DURATION (90s), as
# natter-bench conns; WORK, a scratch directory, emptied (/tmp/natter-conns);
# GATEWAY_FLAGS, extra flags for every gateway (e.g. "--gc-percent 50");
# BENCH_FLAGS, for natter-bench conns (e.g. "--dialers 16").
# Every process it starts is stopped when it ends. Each process may hold
# at most 20,000 open files: a gateway takes ≤ ~19,000 connections, so N
# over 19,000 × GATEWAYS does not fit.
set -euo pipefail

NATTER=${NATTER:-natter}
NATTER_BENCH=${NATTER_BENCH:-natter-bench}
N=${N:-100000}
GATEWAYS=${GATEWAYS:-6}
PROCS=${PROCS:-6}
PORT=${PORT:-36000}
SETTLE=${SETTLE:-30s}
DURATION=${DURATION:-90s}
WORK=${WORK:-/tmp/natter-conns}
HOST=${HOST:-127.0.1.1}
GATEWAY_FLAGS=${GATEWAY_FLAGS:-}
BENCH_FLAGS=${BENCH_FLAGS:-}

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

wait_ready() { # url
	for _ in $(seq 1 300); do
		if [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ]; then return 0; fi
		sleep 0.2
	done
	echo "not ready: $1" >&2
	return 1
}

rm -rf "$WORK"
mkdir -p "$WORK"
"$NATTER" nats --data "$WORK/nats" --listen "$HOST:$PORT" --http "$HOST:$((PORT + 1))" \
	--monitor "$HOST:$((PORT + 2))" --log-level warn 2>"$WORK/nats.log" &
nats_pid=$!
pids+=("$nats_pid")
wait_ready "http://$HOST:$((PORT + 1))/readyz"

role_url() { "$NATTER" credentials --auth-file "$WORK/nats/nats-auth.json" --servers "$HOST:$PORT" --user "$1"; }
NATTER_JWT_SECRET=$(head -c 48 /dev/urandom | base64 -w0)
export NATTER_JWT_SECRET

"$NATTER" presence --nats-url "$(role_url presence)" --metrics "$HOST:$((PORT + 3))" \
	--log-level warn 2>"$WORK/presence.log" &
pids+=("$!")
wait_ready "http://$HOST:$((PORT + 3))/readyz"

gw_url=$(role_url gateway)
urls=() gw_pids=()
for i in $(seq 0 $((GATEWAYS - 1))); do
	# shellcheck disable=SC2086 # GATEWAY_FLAGS is a list of flags
	"$NATTER" gateway --nats-url "$gw_url" --http "$HOST:$((PORT + 10 + i))" \
		--metrics "$HOST:$((PORT + 30 + i))" --pprof "$HOST:$((PORT + 50 + i))" --log-level warn $GATEWAY_FLAGS 2>"$WORK/gateway-$i.log" &
	pids+=("$!")
	gw_pids+=("$!")
	urls+=("ws://$HOST:$((PORT + 10 + i))/v1/ws")
done
for i in $(seq 0 $((GATEWAYS - 1))); do wait_ready "http://$HOST:$((PORT + 30 + i))/readyz"; done

gw_before=()
for p in "${gw_pids[@]}"; do gw_before+=("$(rss_kib "$p")"); done
nats_before=$(rss_kib "$nats_pid")

url_list=$(IFS=,; echo "${urls[*]}")
pid_list=$(IFS=,; echo "${gw_pids[*]}")
echo "load at start: $(cat /proc/loadavg)"
set -x
# shellcheck disable=SC2086 # BENCH_FLAGS is a list of flags
"$NATTER_BENCH" conns -n "$N" --procs "$PROCS" --duration "$DURATION" --settle "$SETTLE" \
	--url "$url_list" --server-pid "$pid_list" $BENCH_FLAGS >"$WORK/result.txt" 2>"$WORK/bench.log" &
{ set +x; } 2>/dev/null
bench=$!

# Once every connection is held, wait SETTLE, then sample (the bench
# reads the gateways' RSS at the same point).
until grep -q "all shares connected" "$WORK/bench.log" 2>/dev/null; do
	if ! kill -0 "$bench" 2>/dev/null; then break; fi
	sleep 1
done
grep "all shares connected" "$WORK/bench.log" || true
sleep "${SETTLE%s}"
echo "--- settled, $(date -u +%H:%M:%S), load $(cat /proc/loadavg)"
total=0
for i in "${!gw_pids[@]}"; do
	now=$(rss_kib "${gw_pids[$i]}")
	total=$((total + now - gw_before[i]))
	echo "gateway $i: RSS ${gw_before[$i]} -> $now KiB"
done
per=$((N / GATEWAYS))
echo "gateways: +$((total / 1024)) MiB in all, $(awk -v t="$total" -v n="$N" 'BEGIN {printf "%.1f", t / n}') KiB per connection (~$per each)"
echo "gateway 0 runtime.MemStats: $(curl -s "http://$HOST:$((PORT + 50))/debug/pprof/heap?debug=1" |
	grep -E '^# (HeapAlloc|HeapInuse|HeapSys|HeapReleased|Stack|NextGC|NumGC) ' | sed 's/^# //' | tr '\n' ';')"
echo "nats: RSS $nats_before -> $(rss_kib "$nats_pid") KiB; $(curl -s "http://$HOST:$((PORT + 2))/varz" | grep -E '"(subscriptions|connections)"' | tr -d ' \n')"
wait "$bench" || true
cat "$WORK/result.txt"
grep -E "first_error|refused|too many|429" "$WORK/bench.log" | head -5 || true
