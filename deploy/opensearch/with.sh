#!/usr/bin/env bash
# Runs a command with NATTER_OPENSEARCH_URL naming a real OpenSearch 2.19
# that this script starts first (start.sh) and stops afterwards (stop.sh):
#
#   deploy/opensearch/with.sh go test ./search/opensearch/
#
# A NATTER_OPENSEARCH_URL already set is used as it is. Without Java and
# Maven the command runs without OpenSearch: its suite then fails under CI
# (CI set) and is skipped, loudly, elsewhere.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ -n "${NATTER_OPENSEARCH_URL:-}" ]; then
  exec "$@"
fi
if ! command -v "${JAVA:-java}" >/dev/null 2>&1 || ! command -v "${JAVAC:-javac}" >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  if [ -n "${CI:-}" ]; then
    echo "with.sh: CI needs Java 17 (with javac) and Maven to start OpenSearch for the search suites" >&2
    exit 1
  fi
  echo "WARNING: no Java/Maven here: the OpenSearch suites will be SKIPPED. Install Java 17 and Maven, then run: go tool task test" >&2
  exec "$@"
fi

# Ports of its own, so an OpenSearch a developer runs on 9200 is left alone.
export OPENSEARCH_PORT=${OPENSEARCH_PORT:-19200}
export OPENSEARCH_TRANSPORT_PORT=${OPENSEARCH_TRANSPORT_PORT:-19300}
url=$("$here/start.sh")
trap '"$here/stop.sh" || true' EXIT
NATTER_OPENSEARCH_URL=$url "$@"
