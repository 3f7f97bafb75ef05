#!/usr/bin/env bash
# Runs a command with NATTER_S3_ENDPOINT (and its keys) naming a real
# S3-compatible server, S3Proxy, that this script starts first (start.sh)
# and stops afterwards (stop.sh):
#
#   deploy/s3/with.sh go test ./attachments/s3store/ ./e2e/ -run S3
#
# A NATTER_S3_ENDPOINT already set is used as it is. Without Java and Maven
# the command runs without one: the S3 suites then fail under CI (CI set)
# and are skipped, loudly, elsewhere.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ -n "${NATTER_S3_ENDPOINT:-}" ]; then
  exec "$@"
fi
if ! command -v "${JAVA:-java}" >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  if [ -n "${CI:-}" ]; then
    echo "with.sh: CI needs Java 17 and Maven to start S3Proxy for the attachments S3 suites" >&2
    exit 1
  fi
  echo "WARNING: no Java/Maven here: the S3 suites will be SKIPPED. Install Java 17 and Maven, then run: go tool task test" >&2
  exec "$@"
fi
vars=$("$here/start.sh")
trap '"$here/stop.sh" || true' EXIT
env $vars "$@"
