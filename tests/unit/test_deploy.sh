#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_deploy.sh -- deploy/'s Dockerfile, compose file and Kubernetes manifests, checked as far
# as this machine allows (no container runtime, no cluster): tests/unit/test_deploy.py says what.
# Needs Debian's python3-yaml (install-deps.sh).
set -euo pipefail
: "${KINFER_BIN:?KINFER_BIN is not set}"
: "${KINFER_SOURCE_DIR:?KINFER_SOURCE_DIR is not set}"
/usr/bin/python3 -c 'import yaml' || { echo "FAIL: python3-yaml is missing (deploy/install-deps.sh installs it)"; exit 1; }
exec /usr/bin/python3 "$KINFER_SOURCE_DIR/tests/unit/test_deploy.py"
