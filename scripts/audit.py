"""`make lint`'s dependency audit: pip-audit over what the venv installs, honest about reach.

Fails on any known vulnerability. When the advisory data cannot be fetched (no route to PyPI's
JSON API or OSV, as on machines with a mirror only), it says so and how much it could audit,
and passes: a lint that cannot see the advisories must not pretend it checked them.
"""

from __future__ import annotations

import json
import subprocess
import sys


def main() -> int:
    done = subprocess.run(
        [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner", "off",
         "--skip-editable"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit failed to run: {done.stderr.strip()[-500:]}")
        return 1
    deps = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    unreachable = [d for d in deps if "skip_reason" in d]
    audited = len(deps) - len(unreachable)
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        print(f"VULNERABLE {dep['name']} {dep.get('version')}: {ids}")
    if vulnerable:
        return 1
    if audited == 0:
        print(
            "pip-audit: SKIPPED — the advisory database cannot be fetched from here "
            f"(0 of {len(deps)} packages could be looked up); audit on a networked machine"
        )
        return 0
    print(
        f"pip-audit: no known vulnerabilities in {audited} packages"
        + (f" ({len(unreachable)} could not be looked up)" if unreachable else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
