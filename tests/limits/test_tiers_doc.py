"""docs/limits.md shows exactly what the tier templates in code say."""

from __future__ import annotations

from pathlib import Path

from tenantry.tenants.tiers import TIERS

DOC = Path(__file__).parents[2] / "docs" / "limits.md"


def documented() -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    lines = [line for line in DOC.read_text().splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0].startswith("---"):
            continue
        rows[cells[0]] = dict(zip(header[1:], cells[1:], strict=True))
    return rows


def test_the_table_matches_the_code():
    table = documented()
    for tier, template in TIERS.items():
        values = {
            **template.limits.model_dump(),
            "fairness_weight": template.fairness_weight,
            "db_connection_share": template.db_connection_share,
            "shed_above": template.shed_above,
        }
        for name, value in values.items():
            assert table[name][tier] == str(value), (tier, name)
    assert set(table) == set(values)
