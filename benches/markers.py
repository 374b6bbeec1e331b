"""Puts a generated table between its markers in BENCHMARKS.md, or appends it under a
heading the first time. Used by report.py, python_peers.py and benches/run.sh:

    python3 benches/markers.py BENCHMARKS.md NAME BODY_FILE HEADING
"""
import re
import sys
from pathlib import Path


def put_table(text: str, name: str, table: str, heading: str) -> str:
    """`table` runs from `<!-- NAME-table` to `<!-- /NAME-table -->` inclusive."""
    pattern = rf"<!-- {name}-table.*?<!-- /{name}-table -->"
    if re.search(pattern, text, flags=re.S):
        return re.sub(pattern, lambda _: table, text, flags=re.S)
    return text + "\n" + heading + "\n\n" + table + "\n"


if __name__ == "__main__":
    md, name, body, heading = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    table = f"<!-- {name}-table: written by benches/run.sh -->\n" + body.read_text() + f"<!-- /{name}-table -->"
    md.write_text(put_table(md.read_text(), name, table, heading))
