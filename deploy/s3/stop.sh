#!/usr/bin/env bash
# Stops the S3Proxy of start.sh and deletes its data.
#   S3PROXY_PORT, S3PROXY_RUN_DIR as for start.sh
set -euo pipefail
port=${S3PROXY_PORT:-19090}
run=${S3PROXY_RUN_DIR:-${TMPDIR:-/tmp}/natter-s3proxy-$port}
pidfile=$run/s3proxy.pid
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
fi
rm -rf "$run"
