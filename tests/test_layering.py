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
        if not module.startswith("memes/cli/"):
            assert "typer" not in names and "rich" not in names, module


def test_no_module_grows_into_a_god_object():
    """Each module stays small enough to read whole; the facade stays a facade."""
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines())
             for package in ("archive", "indexer", "search", "memes") for p in (ROOT / package).rglob("*.py")}
    assert {m: n for m, n in sizes.items() if n > 450} == {}
    assert sizes["memes/app.py"] <= 300
