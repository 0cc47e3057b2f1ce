"""The error and close codes agree in their three places: `errors.py`, the TypeScript
client's `codes.ts` and the tables of docs/protocol.md (STYLE.md: one table, one enum in
Python, one in TypeScript). A code added, renamed or dropped in one place fails here."""

from __future__ import annotations

import re
from pathlib import Path

from realtime_project.gateway.errors import CloseCode, ErrorCode

ROOT = Path(__file__).resolve().parents[2]
CODES_TS = ROOT / "client" / "src" / "core" / "codes.ts"
PROTOCOL_MD = ROOT / "docs" / "protocol.md"

#: Close codes the TypeScript enum holds that no server sends: 1006 is what a browser
#: reports for a connection that dropped without a close frame (RFC 6455 §7.1.5).
CLIENT_OBSERVED_CLOSE_CODES = {1006}


def ts_enum(name: str) -> dict[str, str]:
    """Members of `export enum <name> { ... }` in codes.ts, as {member: value}."""
    source = CODES_TS.read_text()
    body = re.search(rf"export enum {name} \{{(.*?)\}}", source, re.S)
    assert body, f"codes.ts has no enum {name}"
    members = re.findall(r"^\s*(\w+) = (\"[^\"]*\"|\d+),", body.group(1), re.M)
    return {member: value.strip('"') for member, value in members}


def doc_table(heading: str) -> list[str]:
    """The first column of the table under `## <heading>` in docs/protocol.md."""
    section = PROTOCOL_MD.read_text().split(f"\n## {heading}\n", 1)
    assert len(section) == 2, f"docs/protocol.md has no section {heading!r}"
    rows = []
    for line in section[1].split("\n## ", 1)[0].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] not in {"code", "---"}:
            rows.append(cells[0].strip("`"))
    return rows


def camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.lower().split("_"))


def test_error_codes_are_the_same_in_python_typescript_and_the_docs() -> None:
    python = {member.name: member.value for member in ErrorCode}
    assert ts_enum("ErrorCode") == {camel(name): value for name, value in python.items()}
    documented = doc_table("Errors")
    assert sorted(documented) == sorted(python.values())
    assert len(documented) == len(set(documented)), "a code documented twice"


def test_close_codes_are_the_same_in_python_typescript_and_the_docs() -> None:
    python = {member.name: str(member.value) for member in CloseCode}
    typescript = ts_enum("CloseCode")
    assert {name: value for name, value in typescript.items() if int(value) not in CLIENT_OBSERVED_CLOSE_CODES} == {
        camel(name): value for name, value in python.items()
    }
    documented = [row for row in doc_table("Close codes") if not row.startswith("HTTP ")]
    assert sorted(documented) == sorted(python.values())
