#!/usr/bin/env bash
# Starts Apache Cassandra 5.0 on loopback for history/scyllastore's tests and
# prints its host:port (the value of NATTER_CQL_HOSTS) on stdout; progress
# goes to stderr. Fails, with the last 50 log lines, if CQL does not answer
# within CASSANDRA_START_TIMEOUT seconds.
#
#   export NATTER_CQL_HOSTS=$(deploy/cassandra/start.sh)
#   go test ./history/scyllastore/
#   deploy/cassandra/stop.sh
#
# Environment (defaults):
#   CASSANDRA_PORT          9042   CQL native port on 127.0.0.1
#   CASSANDRA_STORAGE_PORT  7000   inter-node port on 127.0.0.1
#   CASSANDRA_HEAP          1g     -Xms/-Xmx
#   CASSANDRA_START_TIMEOUT 180
#   CASSANDRA_RUN_DIR       ${TMPDIR:-/tmp}/natter-cassandra-$CASSANDRA_PORT
#                           data, logs and pid file; stop.sh removes it
#   CASSANDRA_KEEP          1: start on the data already in the run dir (after
#                           `CASSANDRA_KEEP=1 stop.sh`) instead of a fresh one
#   CASSANDRA_LIB           deploy/cassandra/lib  jars, fetched by Maven once
#   JAVA                    java
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${CASSANDRA_PORT:-9042}
storage_port=${CASSANDRA_STORAGE_PORT:-7000}
heap=${CASSANDRA_HEAP:-1g}
timeout=${CASSANDRA_START_TIMEOUT:-180}
run=${CASSANDRA_RUN_DIR:-${TMPDIR:-/tmp}/natter-cassandra-$port}
lib=${CASSANDRA_LIB:-$here/lib}
java=${JAVA:-java}
pidfile=$run/cassandra.pid
log() { echo "cassandra: $*" >&2; }

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  log "already running (pid $(cat "$pidfile")); stop it with deploy/cassandra/stop.sh"
  exit 1
fi

if [ ! -f "$lib/.complete" ]; then
  log "fetching Cassandra and its dependencies into $lib (Maven Central)"
  rm -rf "$lib"
  mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$lib" >&2
  touch "$lib/.complete"
fi

if [ "${CASSANDRA_KEEP:-}" = "1" ] && [ -d "$run/data" ]; then
  log "restarting on the data in $run (CASSANDRA_KEEP=1)"
else
  rm -rf "$run"
fi
mkdir -p "$run/data" "$run/logs"
# The seed is this node itself, on whatever storage port it was given.
sed "s/127\.0\.0\.1:7000/127.0.0.1:$storage_port/" "$here/cassandra.yaml" >"$run/cassandra.yaml"
# Built before the clock starts, so compiling does not eat the timeout.
(cd "$root" && go build -o "$run/waitcql" ./deploy/cassandra/waitcql)

jamm=$(ls "$lib"/jamm-*.jar 2>/dev/null | head -n 1)
# The daemon is started directly, not through Cassandra's bin/cassandra: the
# refusal to run as root (overridden there with -R) is in that script, not in
# the daemon, so running as root in CI needs nothing more.
opts=(
  -Xms"$heap" -Xmx"$heap" -Xss256k
  -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1
  -XX:G1HeapRegionSize=4m -XX:MaxGCPauseMillis=300
  -XX:MaxDirectMemorySize=256m -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1
  -XX:+PerfDisableSharedMem
  -Djava.net.preferIPv4Stack=true
  # JPMS access Cassandra 5.0 needs on Java 17 (conf/jvm17-server.options).
  -Djdk.attach.allowAttachSelf=true
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-exports java.base/java.lang.ref=ALL-UNNAMED
  --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
  --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  -Dio.netty.tryReflectionSetAccessible=true
  -Dio.netty.allocator.useCacheForAllThreads=true
  -Dio.netty.allocator.maxOrder=11
  # This node, its files and ports.
  -Dcassandra.config="file://$run/cassandra.yaml"
  -Dlogback.configurationFile="file://$here/logback.xml"
  -Dcassandra.logdir="$run/logs"
  -Dcassandra.storagedir="$run/data"
  -Dcassandra.native_transport_port="$port"
  -Dcassandra.storage_port="$storage_port"
  -Dcassandra-foreground=yes
  # One node alone: no peers to wait for (ring delay is 30 s by default).
  -Dcassandra.skip_wait_for_gossip_to_settle=0
  -Dcassandra.superuser_setup_delay_ms=0
  -Dcassandra.ring_delay_ms=1000
)
if [ -n "$jamm" ]; then
  opts+=(-javaagent:"$jamm")
fi

log "starting on 127.0.0.1:$port (heap $heap, run dir $run)"
began=$(date +%s%N)
nohup "$java" "${opts[@]}" -cp "$lib/*" org.apache.cassandra.service.CassandraDaemon \
  >"$run/logs/stdout.log" 2>&1 </dev/null &
echo $! >"$pidfile"

if ! "$run/waitcql" -addr "127.0.0.1:$port" -timeout "${timeout}s" -pid "$(cat "$pidfile")" >&2; then
  log "did not come up (timeout ${timeout}s); last 50 lines of the logs:"
  tail -n 50 "$run/logs/system.log" "$run/logs/stdout.log" >&2 2>/dev/null || true
  kill "$(cat "$pidfile")" 2>/dev/null || true
  exit 1
fi
elapsed=$(( ($(date +%s%N) - began) / 1000000 ))
log "up in $((elapsed / 1000)).$(printf %03d $((elapsed % 1000)))s (pid $(cat "$pidfile"))"
echo "127.0.0.1:$port"
