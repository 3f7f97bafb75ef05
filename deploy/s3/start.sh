#!/usr/bin/env bash
# Starts S3Proxy (org.gaul:s3proxy from Maven Central) on loopback over a
# directory (its filesystem backend) for the attachments S3 tests, and
# prints the variables of with.sh on stdout (NATTER_S3_ENDPOINT=host:port,
# NATTER_S3_ACCESS_KEY, NATTER_S3_SECRET_KEY), one per line; progress goes
# to stderr. S3Proxy checks SigV4 signatures, presigned URLs included.
#
#   eval "$(deploy/s3/start.sh | sed 's/^/export /')"
#   go test ./attachments/s3store/
#   deploy/s3/stop.sh
#
# Environment (defaults):
#   S3PROXY_PORT          19090
#   S3PROXY_START_TIMEOUT 120
#   S3PROXY_RUN_DIR       ${TMPDIR:-/tmp}/natter-s3proxy-$S3PROXY_PORT (data, log, pid; stop.sh removes it)
#   S3PROXY_LIB           deploy/s3/lib  jars, fetched by Maven once
#   JAVA                  java (17 or later)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
port=${S3PROXY_PORT:-19090}
timeout=${S3PROXY_START_TIMEOUT:-120}
run=${S3PROXY_RUN_DIR:-${TMPDIR:-/tmp}/natter-s3proxy-$port}
lib=${S3PROXY_LIB:-$here/lib}
java=${JAVA:-java}
pidfile=$run/s3proxy.pid
access=natter-test
secret=natter-test-secret
log() { echo "s3proxy: $*" >&2; }

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  log "already running (pid $(cat "$pidfile")); stop it with deploy/s3/stop.sh"
  exit 1
fi

if [ ! -f "$lib/.complete" ]; then
  log "fetching S3Proxy and its dependencies into $lib (Maven Central)"
  rm -rf "$lib"
  mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$lib" >&2
  touch "$lib/.complete"
fi

rm -rf "$run"
mkdir -p "$run/data"
cat >"$run/s3proxy.conf" <<CONF
s3proxy.endpoint=http://127.0.0.1:$port
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=$access
s3proxy.credential=$secret
jclouds.provider=filesystem
jclouds.filesystem.basedir=$run/data
CONF

"$java" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$lib/*" org.gaul.s3proxy.Main \
  --properties "$run/s3proxy.conf" >"$run/s3proxy.log" 2>&1 &
echo $! >"$pidfile"

deadline=$((SECONDS + timeout))
# Any HTTP answer (403 to an unsigned request) means it serves.
until curl -s -o /dev/null "http://127.0.0.1:$port/"; do
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
    log "did not start within ${timeout}s; last log lines:"
    tail -n 50 "$run/s3proxy.log" >&2 || true
    kill "$(cat "$pidfile")" 2>/dev/null || true
    exit 1
  fi
  sleep 0.5
done
log "serving on 127.0.0.1:$port (pid $(cat "$pidfile"), data in $run/data)"
echo "NATTER_S3_ENDPOINT=127.0.0.1:$port"
echo "NATTER_S3_ACCESS_KEY=$access"
echo "NATTER_S3_SECRET_KEY=$secret"
