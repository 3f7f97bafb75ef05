#!/usr/bin/env bash
# Runs a command with NATTER_CQL_HOSTS naming a real Cassandra 5.0 that this
# script starts first (start.sh) and stops afterwards (stop.sh):
#
#   deploy/cassandra/with.sh go test ./history/scyllastore/
#
# A NATTER_CQL_HOSTS already set is used as it is. Without Java and Maven the
# command runs without a database: its Cassandra suites then fail under CI
# (CI set) and are skipped, loudly, elsewhere.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ -n "${NATTER_CQL_HOSTS:-}" ]; then
  exec "$@"
fi
if ! command -v "${JAVA:-java}" >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  if [ -n "${CI:-}" ]; then
    echo "with.sh: CI needs Java 17 and Maven to start Cassandra for the history store suites" >&2
    exit 1
  fi
  echo "WARNING: no Java/Maven here: the Cassandra suites will be SKIPPED. Install Java 17 and Maven, then run: go tool task test" >&2
  exec "$@"
fi

# Ports of its own, so a Cassandra a developer runs on 9042 is left alone.
export CASSANDRA_PORT=${CASSANDRA_PORT:-19042}
export CASSANDRA_STORAGE_PORT=${CASSANDRA_STORAGE_PORT:-17000}
hosts=$("$here/start.sh")
trap '"$here/stop.sh" || true' EXIT
NATTER_CQL_HOSTS=$hosts "$@"
