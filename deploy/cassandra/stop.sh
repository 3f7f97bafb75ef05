#!/usr/bin/env bash
# Stops the Cassandra started by start.sh (same CASSANDRA_PORT /
# CASSANDRA_RUN_DIR) and removes its run directory: data, logs, pid file.
# Set CASSANDRA_KEEP=1 to keep the directory (e.g. to read the logs).
set -euo pipefail

port=${CASSANDRA_PORT:-9042}
run=${CASSANDRA_RUN_DIR:-${TMPDIR:-/tmp}/natter-cassandra-$port}
pidfile=$run/cassandra.pid
log() { echo "cassandra: $*" >&2; }

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

if [ "${CASSANDRA_KEEP:-}" != "1" ]; then
  rm -rf "$run"
fi
