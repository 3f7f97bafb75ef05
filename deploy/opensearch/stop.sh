#!/usr/bin/env bash
# Stops the OpenSearch started by start.sh (same OPENSEARCH_PORT /
# OPENSEARCH_RUN_DIR) and removes its run directory: data, logs, pid file.
# Set OPENSEARCH_KEEP=1 to keep the directory (e.g. to read the logs).
set -euo pipefail

port=${OPENSEARCH_PORT:-9200}
run=${OPENSEARCH_RUN_DIR:-${TMPDIR:-/tmp}/natter-opensearch-$port}
pidfile=$run/opensearch.pid
log() { echo "opensearch: $*" >&2; }

if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid still running after 30s; killing it"
      kill -9 "$pid" 2>/dev/null || true
    fi
    log "stopped pid $pid"
  else
    log "pid $pid is not running"
  fi
else
  log "no pid file at $pidfile; nothing to stop"
fi

if [ "${OPENSEARCH_KEEP:-}" != "1" ]; then
  rm -rf "$run"
fi
