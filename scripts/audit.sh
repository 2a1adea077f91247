#!/usr/bin/env bash
# S9 (SERVICE.md 4.4): audit the installed dependencies for known vulnerabilities with pip-audit
# (in the dev extra). It needs network access to the vulnerability service (PyPI/OSV), so the
# test suite never runs it; CI and release checks do:
#
#   scripts/audit.sh                      # the project's .venv
#   PYTHON=/path/to/python scripts/audit.sh --ignore-vuln GHSA-xxxx-xxxx-xxxx
#
# Exit codes: 0 clean; 1 a known vulnerability in an installed package; 2 pip-audit missing;
# 3 a core dependency (pyproject [project] dependencies) could not be audited, e.g. because
# the vulnerability service is unreachable (pip-audit alone would report that as a pass).
# Extra arguments go to pip-audit. lumenrec itself (an editable install) is skipped: it is not
# on the index. To accept a finding that does not apply, pass --ignore-vuln ID and say why.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if ! "$PYTHON" -c "import pip_audit" 2>/dev/null; then
    echo "error: pip-audit is not installed; run: $PYTHON -m pip install -c constraints.txt -e '.[dev]'" >&2
    exit 2
fi
report="$(mktemp -t lumenrec-audit.XXXXXX.json)"
trap 'rm -f "$report"' EXIT
status=0
"$PYTHON" -m pip_audit --local --skip-editable --progress-spinner off \
    --format json --output "$report" "$@" || status=$?
"$PYTHON" - "$report" "$status" <<'PY'
import json
import re
import sys
import tomllib

report, status = sys.argv[1], int(sys.argv[2])
try:
    with open(report, encoding="utf-8") as fh:
        deps = json.load(fh)["dependencies"]
except (OSError, ValueError, KeyError) as err:
    print(f"error: pip-audit wrote no report ({err}); exit status {status}", file=sys.stderr)
    sys.exit(status or 1)
with open("pyproject.toml", "rb") as fh:
    core = {
        re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("_", "-")
        for d in tomllib.load(fh)["project"]["dependencies"]
    }
vulnerable = [d for d in deps if d.get("vulns")]
skipped = {d["name"].lower(): d.get("skip_reason", "") for d in deps if "skip_reason" in d}
audited = len(deps) - len(skipped)
for d in vulnerable:
    for v in d["vulns"]:
        fixes = ", ".join(v.get("fix_versions") or []) or "no fix yet"
        print(f"VULNERABLE {d['name']} {d['version']}: {v['id']} (fixed in {fixes})")
print(f"audited {audited} packages, {len(vulnerable)} with known vulnerabilities, "
      f"{len(skipped)} skipped")
if vulnerable:
    sys.exit(1)
missing = sorted(core & set(skipped))
if missing:
    print(f"error: core dependencies could not be audited: {', '.join(missing)} "
          f"({skipped[missing[0]]}); is the vulnerability service reachable?", file=sys.stderr)
    sys.exit(3)
sys.exit(status)
PY
