"""The layering the design asks for: archive/ imports neither indexer/ nor search/, and no core
module imports typer or rich (only the CLI prints)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(package: str) -> dict[str, set[str]]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("package, forbidden", [
    ("archive", {"indexer", "search", "memes", "typer", "rich"}),
    ("indexer", {"search", "memes", "typer", "rich"}),
    ("search", {"indexer", "memes", "typer", "rich"}),
])
def test_core_packages_keep_their_layer(package, forbidden):
    for module, names in _imports(package).items():
        assert not names & forbidden, f"{module} imports {names & forbidden}"


def test_only_the_cli_imports_typer():
    for module, names in _imports("memes").items():
        if not module.endswith("cli.py"):
            assert "typer" not in names and "rich" not in names, module
