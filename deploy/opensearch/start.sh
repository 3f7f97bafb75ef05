#!/usr/bin/env bash
# Starts one OpenSearch 2.19 node on loopback for search/opensearch's tests
# and prints its HTTP URL (the value of NATTER_OPENSEARCH_URL) on stdout;
# progress goes to stderr. The node is OpenSearch's own, from Maven Central,
# started by NatterOpenSearch.java without the distribution's launcher (see
# there why). Fails, with the last 50 log lines, if HTTP does not answer
# within OPENSEARCH_START_TIMEOUT seconds.
#
#   export NATTER_OPENSEARCH_URL=$(deploy/opensearch/start.sh)
#   go test ./search/opensearch/
#   deploy/opensearch/stop.sh
#
# Environment (defaults):
#   OPENSEARCH_PORT           9200  HTTP port on 127.0.0.1
#   OPENSEARCH_TRANSPORT_PORT 9300  node-to-node port on 127.0.0.1
#   OPENSEARCH_HEAP           512m  -Xms/-Xmx
#   OPENSEARCH_START_TIMEOUT  180
#   OPENSEARCH_RUN_DIR        ${TMPDIR:-/tmp}/natter-opensearch-$OPENSEARCH_PORT
#                             data, logs and pid file; stop.sh removes it
#   OPENSEARCH_LIB            deploy/opensearch/lib  jars (Maven) and the compiled launcher
#   JAVA, JAVAC               java, javac (Java 17)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
port=${OPENSEARCH_PORT:-9200}
tport=${OPENSEARCH_TRANSPORT_PORT:-9300}
heap=${OPENSEARCH_HEAP:-512m}
timeout=${OPENSEARCH_START_TIMEOUT:-180}
run=${OPENSEARCH_RUN_DIR:-${TMPDIR:-/tmp}/natter-opensearch-$port}
lib=${OPENSEARCH_LIB:-$here/lib}
java=${JAVA:-java}
javac=${JAVAC:-javac}
pidfile=$run/opensearch.pid
log() { echo "opensearch: $*" >&2; }

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  log "already running (pid $(cat "$pidfile")); stop it with deploy/opensearch/stop.sh"
  exit 1
fi

if [ ! -f "$lib/.complete" ] || [ "$here/NatterOpenSearch.java" -nt "$lib/.complete" ] || [ "$here/pom.xml" -nt "$lib/.complete" ]; then
  log "fetching OpenSearch and its dependencies into $lib (Maven Central)"
  rm -rf "$lib"
  mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$lib" >&2
  mkdir -p "$lib/classes"
  "$javac" -d "$lib/classes" -cp "$lib/*" "$here/NatterOpenSearch.java" >&2
  touch "$lib/.complete"
fi

rm -rf "$run"
mkdir -p "$run/home"
log "starting on 127.0.0.1:$port (heap $heap, run dir $run)"
began=$(date +%s%N)
nohup "$java" -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1 \
  -Djava.net.preferIPv4Stack=true -Dlog4j2.disable.jmx=true \
  -Dnatter.home="$run/home" -Dnatter.http.port="$port" -Dnatter.transport.port="$tport" \
  -cp "$lib/classes:$lib/*" NatterOpenSearch >"$run/stdout.log" 2>&1 </dev/null &
echo $! >"$pidfile"

deadline=$(( $(date +%s) + timeout ))
until curl -fsS "http://127.0.0.1:$port/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1; do
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
    log "did not come up (timeout ${timeout}s); last 50 lines of its output:"
    tail -n 50 "$run/stdout.log" >&2 2>/dev/null || true
    kill "$(cat "$pidfile")" 2>/dev/null || true
    exit 1
  fi
  sleep 1
done
elapsed=$(( ($(date +%s%N) - began) / 1000000 ))
log "up in $((elapsed / 1000)).$(printf %03d $((elapsed % 1000)))s (pid $(cat "$pidfile"))"
echo "http://127.0.0.1:$port"
