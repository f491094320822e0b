"""The floor: read and ``ast.parse`` every file named in a list (one path a line)."""

import ast
import sys

failed = 0
with open(sys.argv[1], encoding="utf-8") as listing:
    for line in listing:
        with open(line.rstrip("\n"), "rb") as handle:
            data = handle.read()
        try:
            ast.parse(data)
        except (SyntaxError, ValueError):
            failed += 1
print(f"{failed} files did not parse")
