"""Parse Bicep files with pycep-parser and print their trees as one JSON object, path -> tree.

Runs in the tools venv (``.venv-tools/bin/python -m scripts.parse_bicep FILE...``), where
pycep-parser is installed beside checkov; the tests read its output. A file that does not parse
is reported on stderr and makes the exit status 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pycep import BicepParser


def main(paths: list[str]) -> int:
    """Print ``{path: tree}`` for every file that parses; return 1 if any did not."""
    parser = BicepParser()
    trees: dict[str, object] = {}
    failed = False
    for path in paths:
        try:
            trees[path] = parser.parse(file_path=Path(path))
        except Exception as error:  # lark raises several unrelated exception types
            print(f"{path}: {type(error).__name__}: {error}", file=sys.stderr)
            failed = True
    json.dump(trees, sys.stdout, default=str)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
