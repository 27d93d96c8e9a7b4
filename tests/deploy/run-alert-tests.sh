#!/usr/bin/env bash
# promtool: deploy/prometheus/alerts.yml is a valid rule file, and its unit tests
# (alerts_test.yml) pass.
#   run-alert-tests.sh SOURCE_DIR
set -euo pipefail
src="${1:?usage: run-alert-tests.sh SOURCE_DIR}"
if ! command -v promtool >/dev/null; then
  echo "run-alert-tests: promtool not found (Debian package prometheus; scripts/setup.sh installs it)" >&2
  exit 1
fi
promtool check rules "$src/deploy/prometheus/alerts.yml"
promtool test rules "$src/tests/deploy/alerts_test.yml"
