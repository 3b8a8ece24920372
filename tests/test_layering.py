"""Dependencies between ragsift's packages point one way (docs/architecture.md, "Layers").

Every ``import`` of every module under src/ragsift is read with :mod:`ast`, those inside functions
and ``if TYPE_CHECKING:`` blocks included (a lazy import is still a dependency). A package may
import packages of lower layers only: not its peers in the same layer, not a higher layer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "ragsift"
ROOT = "ragsift"  # the package's own __init__ (version, the five shapes, the errors)

#: Lowest first; the names in one layer are peers and do not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("types", "errors", "atomic", "report"),
    ("data", ROOT),
    ("models", "evaluate", "config_file"),
    ("retrieve", "rerank"),
    ("pipeline",),
    ("collection",),
    ("train", "jobs", "rag"),
    ("serve", "adapt"),
    ("cli",),
)



MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    """``src/ragsift/retrieve/spec.py`` -> ``ragsift.retrieve.spec`` (a package: its folder)."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


NAMES = {module_name(path) for path in MODULES}


def imports(path: Path, source: str | None = None) -> Iterator[tuple[str, int]]:
    """Every ragsift module ``path`` (or ``source`` read as that file) imports, with the line;
    relative imports resolved; ``from P import N`` is ``P``, and ``P.N`` too when N is a module."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = node.module if node.level == 0 else ".".join(
                [*parts, *([node.module] if node.module else [])])
            targets = [module or "", *(f"{module}.{alias.name}" for alias in node.names
                                       if f"{module}.{alias.name}" in NAMES)]
        else:
            continue
        for target in targets:
            if target == ROOT or target.startswith(f"{ROOT}."):
                yield target, node.lineno


def unit(module: str) -> str:
    """The layered unit a module belongs to: ``ragsift.retrieve.spec`` -> ``retrieve``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def layer_of(name: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if name in layer)




def test_every_package_has_a_layer():
    units = {unit(module_name(path)) for path in MODULES}
    placed = {name for layer in LAYERS for name in layer}
    assert units - placed == set(), "place new packages in LAYERS and docs/architecture.md"


def violations(path: Path, source: str | None = None) -> list[str]:
    """``file:line: what imports what`` for each import of ``path`` that points sideways or
    up."""
    importer = module_name(path)
    own = layer_of(unit(importer))
    found = []
    for target, line in imports(path, source):
        other = unit(target)
        if other != unit(importer) and layer_of(other) >= own:
            found.append(f"{path.relative_to(SRC.parent)}:{line}: {importer} imports {target} "
                         f"(layer {layer_of(other)} {other!r} from layer {own} "
                         f"{unit(importer)!r})")
    return sorted(set(found))


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_point_down(path):
    assert violations(path) == []


def test_the_checker_sees_lazy_sideways_and_relative_imports():
    probe = PACKAGE / "models" / "layering_probe.py"
    lazy_up = "def f():\n    from ragsift.retrieve.spec import parse_spec\n    return parse_spec\n"
    assert violations(probe, lazy_up) == [
        "src/ragsift/models/layering_probe.py:2: ragsift.models.layering_probe imports "
        "ragsift.retrieve.spec (layer 3 'retrieve' from layer 2 'models')"]
    assert len(violations(probe, "import ragsift.evaluate\n")) == 1  # a peer
    assert violations(probe, "from ragsift.data import beir\nimport ragsift.models.hub\n") == []
    relative = "from .base import Retriever\nfrom .. import errors\n"
    assert list(imports(PACKAGE / "retrieve" / "spec.py", relative)) == [
        ("ragsift.retrieve.base", 1), ("ragsift", 2), ("ragsift.errors", 2)]


def test_the_cli_modules_import_no_cycle():
    """cli/job, cli/label and cli/mine share options through cli/options, not each other."""
    graph = {module_name(p): {t for t, _ in imports(p) if t.startswith("ragsift.cli.")}
             for p in sorted((PACKAGE / "cli").glob("*.py"))}
    for importer, targets in graph.items():
        graph[importer] = {t if t in graph else t.rpartition(".")[0] for t in targets}
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"import cycle: {' -> '.join((*path, node))}"
        if node in done:
            return
        for nxt in graph.get(node, ()):
            visit(nxt, (*path, node))
        done.add(node)

    for start in graph:
        visit(start, ())


def test_the_docs_list_the_layers():
    docs = (SRC.parent / "docs" / "architecture.md").read_text()
    for i, layer in enumerate(LAYERS):
        assert f"{i}  {' | '.join(layer)}" in docs
