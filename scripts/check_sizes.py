"""No module over 500 lines and no function over 80 in the runtime package (migrations aside).

Each one still over is listed by name in pyproject.toml (`[tool.supportlens.sizes]`) as a debt, the way
the import contracts list theirs: a new one fails, and so does a listed debt that has been paid (take it
off the list), so the list only shrinks. Lines are counted as the file has them (docstrings and comments
included); a function from its first decorator to its last line.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "supportlens"


def measure() -> tuple[dict[str, int], dict[str, int]]:
    modules: dict[str, int] = {}
    functions: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT / "src").as_posix()
        if "/migrations/" in rel:
            continue
        text = path.read_text(encoding="utf-8")
        modules[rel] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([d.lineno for d in node.decorator_list] + [node.lineno])
                functions[f"{rel}:{node.name}"] = (node.end_lineno or node.lineno) - first + 1
    return modules, functions


def main() -> int:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["supportlens"]["sizes"]
    modules, functions = measure()
    over_modules = {m for m, n in modules.items() if n > config["max_module_lines"]}
    over_functions = {f for f, n in functions.items() if n > config["max_function_lines"]}
    failures = []
    for kind, over, debts, sizes in (
        ("module", over_modules, set(config["module_debts"]), modules),
        ("function", over_functions, set(config["function_debts"]), functions),
    ):
        for name in sorted(over - debts):
            failures.append(f"new {kind} over the limit: {name} ({sizes[name]} lines)")
        for name in sorted(debts - over):
            failures.append(f"paid debt, take it off the list: {name} ({sizes.get(name, 0)} lines)")
    for line in failures:
        print(line)
    debts = len(config["module_debts"]) + len(config["function_debts"])
    print(
        f"sizes: {len(modules)} modules, {len(functions)} functions; limits {config['max_module_lines']} and "
        f"{config['max_function_lines']} lines; {debts} listed debts; {len(failures)} problems"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
