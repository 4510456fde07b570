#!/usr/bin/env bash
# The test job: install what the tests need, then build and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
swift test --skip-build
