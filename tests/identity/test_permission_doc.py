"""docs/security.md shows exactly the permission matrix in code."""

from __future__ import annotations

from pathlib import Path

from tenantry.identity.permissions import ROLE_PERMISSIONS, SCOPE_PERMISSIONS, Permission

DOC = Path(__file__).parents[2] / "docs" / "security.md"


def test_the_documented_matrix_is_the_code():
    lines = [
        line
        for line in DOC.read_text().splitlines()
        if line.startswith("| `") or line.startswith("| permission")
    ]
    header = [c.strip() for c in lines[0].strip("|").split("|")][1:]
    documented = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if (
            not cells[0].startswith("`")
            or cells[0].count("`") != 2
            or len(cells) != len(header) + 1
        ):
            continue
        documented[cells[0].strip("`")] = {
            h for h, mark in zip(header, cells[1:], strict=True) if mark == "✓"
        }
    expected = {}
    for permission in Permission:
        holders = {role for role, granted in ROLE_PERMISSIONS.items() if permission in granted}
        holders |= {
            f"key `{scope}`"
            for scope, granted in SCOPE_PERMISSIONS.items()
            if permission in granted
        }
        expected[str(permission)] = holders
    assert documented == expected
