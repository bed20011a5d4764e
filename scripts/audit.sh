#!/usr/bin/env bash
# Audit the pinned dependencies for known vulnerabilities (pip-audit against PyPI's advisory data).
# Fails when vulnerabilities are found; says so plainly, without failing, when the advisory service is unreachable
# (this workplace's machines reach the package index but not every API behind it).
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(.venv/bin/pip-audit -r requirements.lock --no-deps --disable-pip --progress-spinner off 2>&1)
rc=$?
echo "$out" | grep -v -e "encouraged to fully hash" -e "pip-compile" | tail -n 20
if echo "$out" | grep -Eq "Found [0-9]+ known vulnerabilit"; then
    echo "pip-audit: known vulnerabilities in the pinned dependencies (above)"
    exit 1
fi
if [ "$rc" -ne 0 ] || echo "$out" | grep -q "could not be audited"; then
    echo "pip-audit: the advisory service could not be reached for every package; audit incomplete here"
fi
exit 0
