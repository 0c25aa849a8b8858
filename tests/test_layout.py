"""The layout: dependencies between the four installed packages point one way.

Every ``.py`` module of ``qgen``, ``decoding``, ``regularizers`` and ``generative`` is parsed
with `ast` (nothing is imported) and its imports are checked against the tables below:

* ``decoding`` imports none of the other installed packages;
* ``regularizers`` imports none of them either, except ``decoding.registry`` (the `Registry`
  type behind ``regularizers.REGULARIZERS``, a module that imports nothing of the repository):
  the one exception, listed in ``ALLOWED_BY_PACKAGE``. Any other module of ``decoding`` stays forbidden, and so
  does ``from decoding import registry`` (write ``from decoding.registry import Registry``);
* ``generative`` and ``qgen`` may import ``decoding`` and ``regularizers``, not each other;
* no package imports ``studies`` (research code, not installed);
* qgen's code lives in sub-packages (``io``, ``modeling``, ``generation``, ``evaluation``,
  ``training``, ``cli``), each importing only the ones below it (``QGEN_LAYERS``);
* qgen's inference modules (all but ``qgen.training`` and ``qgen.cli.train``) import neither
  ``qgen.training`` nor ``regularizers`` nor the HF ``Trainer``, directly (at module level or
  inside a function) or through the modules they import (importing ``qgen.x`` runs
  ``qgen/__init__.py`` too).

An import is a dotted name: ``import a.b`` gives ``a.b``; ``from a import b`` gives ``a`` and
``a.b``; relative imports are resolved; ``m.attr`` on an imported module ``m`` and
``importlib.import_module("a.b")`` count too. A forbidden entry ``a.b`` matches ``a.b`` and
``a.b.*``, not ``a.bc``.
"""

from __future__ import annotations

import ast
import configparser
import functools
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("qgen", "decoding", "regularizers", "generative")

# package -> the packages it must not import (the allowed graph, written as its complement)
FORBIDDEN_BY_PACKAGE = {
    "decoding": ("qgen", "regularizers", "generative", "studies"),
    "regularizers": ("qgen", "decoding", "generative", "studies"),
    "generative": ("qgen", "studies"),
    "qgen": ("generative", "studies"),
}
# package -> the modules it may import although FORBIDDEN_BY_PACKAGE forbids their package (an
# entry ``a.b`` allows ``a.b`` and ``a.b.*`` only)
ALLOWED_BY_PACKAGE = {
    "regularizers": ("decoding.registry",),
}

# qgen's folders, lowest first: each sub-package may import only the ones listed for it (and
# itself). Every qgen module lives in one of them, except qgen/__init__.py and qgen/__main__.py.
QGEN_LAYERS = {
    "qgen.io": (),
    "qgen.modeling": ("qgen.io",),
    "qgen.generation": ("qgen.io", "qgen.modeling"),
    "qgen.evaluation": ("qgen.io", "qgen.modeling", "qgen.generation"),
    "qgen.training": ("qgen.io", "qgen.modeling", "qgen.generation"),
    "qgen.cli": ("qgen.io", "qgen.modeling", "qgen.generation", "qgen.evaluation", "qgen.training"),
}
QGEN_TOP_LEVEL = ("qgen/__init__.py", "qgen/__main__.py")
# the inference side is every qgen module but these: it never imports the training code, the
# regularizers or the HF Trainer, directly or through what it imports
QGEN_TRAINING_SIDE = ("qgen.training", "qgen.cli.train")
# the one door from the inference side to the training side: the dispatcher imports `qgen train`
# inside the branch that runs it, never at module level (tested below; a slow test in
# tests/test_qgen_train_cli.py checks at run time that `qgen generate` never loads it)
LAZY_TRAINING_DOORS = {"qgen/cli/main.py": ("qgen.cli.train",)}
INFERENCE_FORBIDDEN = (
    "qgen.training",
    "regularizers",
    "transformers.Trainer",
    "transformers.Seq2SeqTrainer",
    "transformers.trainer",
    "transformers.trainer_seq2seq",
)


# ----------------------------------------------------------------------------- the checker
@dataclass(frozen=True)
class Import:
    """One imported dotted name, the line it is on and the statement that imports it."""

    name: str
    line: int
    statement: str


def module_name(path: Path, root: Path = ROOT) -> str:
    """``qgen/cli.py`` -> ``qgen.cli``; ``qgen/__init__.py`` -> ``qgen``."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` in ``module``."""
    if level == 0:
        return target or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _dotted(node: ast.expr) -> list[str] | None:
    """``a.b.c`` -> ``["a", "b", "c"]``; None when the chain does not start at a name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def find_imports(source: str, module: str, is_package: bool = False) -> list[Import]:
    """Every import of ``source`` (the code of ``module``), wherever it is in the file, except
    inside a module-level ``__getattr__`` (PEP 562): that runs only when a user asks for the
    attribute, never when the module is imported."""
    tree = ast.parse(source)
    tree.body = [
        n for n in tree.body if not (isinstance(n, ast.FunctionDef) and n.name == "__getattr__")
    ]
    found: dict[tuple[str, int], Import] = {}
    aliases: dict[str, str] = {}  # local name -> module, from `import a.b as c` / `import a`

    def add(name: str, node: ast.AST) -> None:
        if name:
            found.setdefault((name, node.lineno), Import(name, node.lineno, ast.unparse(node)))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
                local = alias.asname or alias.name.split(".")[0]
                aliases[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            add(base, node)
            for alias in node.names:
                if alias.name != "*":
                    add(f"{base}.{alias.name}" if base else alias.name, node)
    for node in ast.walk(tree):  # attributes of imported modules, and import_module("...")
        if isinstance(node, ast.Attribute):
            chain = _dotted(node)
            if chain and chain[0] in aliases:
                add(".".join([aliases[chain[0]], *chain[1:]]), node)
        elif isinstance(node, ast.Call) and node.args:
            func = _dotted(node.func)
            arg = node.args[0]
            if (
                func
                and func[-1] in ("import_module", "__import__")
                and isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
            ):
                add(arg.value, node)
    return sorted(found.values(), key=lambda i: (i.line, i.name))


def matches(name: str, forbidden: str) -> bool:
    return name == forbidden or name.startswith(forbidden + ".")


def forbidden_imports(
    imports: list[Import], forbidden: tuple[str, ...]
) -> list[tuple[Import, str]]:
    """``(import, forbidden entry)`` pairs, one per statement (its shortest forbidden name)."""
    found: dict[tuple[int, str], tuple[Import, str]] = {}
    for i in sorted(imports, key=lambda i: (i.line, len(i.name))):
        for f in forbidden:
            if matches(i.name, f):
                found.setdefault((i.line, i.statement), (i, f))
    return list(found.values())


def describe(path: str, violations: list[tuple[Import, str]]) -> str:
    return "\n".join(
        f"{path}:{i.line}: `{i.statement}` imports {i.name} (forbidden: {f})" for i, f in violations
    )


def package_modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Paths (relative, posix) of every .py module of ``packages`` under ``root``."""
    return sorted(
        p.relative_to(root).as_posix()
        for package in packages
        for p in (root / package).rglob("*.py")
        if "__pycache__" not in p.parts
    )


def module_files(module: str, root: Path = ROOT) -> list[str]:
    """The file of a module (``a/b.py``, or ``a/__init__.py`` for ``a.__init__``), or every .py
    file of a package (``a/b/``); empty when neither exists."""
    base = root.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return [base.with_suffix(".py").relative_to(root).as_posix()]
    if base.is_dir():
        return sorted(
            p.relative_to(root).as_posix()
            for p in base.rglob("*.py")
            if "__pycache__" not in p.parts
        )
    return []


def imports_of_file(path: str, root: Path = ROOT) -> list[Import]:
    file = root / path
    found = _cached_imports(file.read_text(), module_name(file, root), file.name == "__init__.py")
    doors = LAZY_TRAINING_DOORS.get(path, ()) if root == ROOT else ()
    return [i for i in found if not any(matches(i.name, d) for d in doors)]


_cached_imports = functools.cache(find_imports)  # keyed by the source: edits are seen


def package_violations(path: str, root: Path = ROOT) -> str:
    """The message of every import of ``path`` that its package's row of the table forbids and
    its row of ``ALLOWED_BY_PACKAGE`` does not allow."""
    package = path.split("/")[0]
    allowed = ALLOWED_BY_PACKAGE.get(package, ())
    imports = [
        i for i in imports_of_file(path, root) if not any(matches(i.name, a) for a in allowed)
    ]
    return describe(path, forbidden_imports(imports, FORBIDDEN_BY_PACKAGE[package]))


def reach_violations(path: str, forbidden: tuple[str, ...], root: Path = ROOT) -> str:
    """Follow the imports of ``path`` through the modules of the four packages (an import of
    ``a.b.c`` runs ``a`` and ``a.b`` first) and describe each chain that ends at a forbidden
    import; empty when there is none."""
    paths = {module_name(root / p, root): p for p in package_modules(root)}

    def modules_run_by(name: str) -> list[str]:
        parts = name.split(".")
        return [
            ".".join(parts[:k]) for k in range(1, len(parts) + 1) if ".".join(parts[:k]) in paths
        ]

    start = module_name(root / path, root)
    chains: dict[str, list[str]] = {start: []}
    queue = deque([start])
    for name in modules_run_by(start):  # importing the module runs its packages' __init__
        if name not in chains:
            chains[name] = [f"{path} is in package {name}"]
            queue.append(name)
    problems = []
    while queue:
        current = queue.popleft()
        current_path = paths[current]
        for imp, bad in forbidden_imports(imports_of_file(current_path, root), forbidden):
            step = f"{current_path}:{imp.line}: `{imp.statement}` imports {imp.name} (forbidden: {bad})"
            problems.append(" -> ".join([*chains[current], step]))
        for imp in imports_of_file(current_path, root):
            if any(matches(imp.name, f) for f in forbidden):
                continue  # reported above; what it imports in turn adds nothing
            for name in modules_run_by(imp.name):
                if name not in chains:
                    step = f"{current_path}:{imp.line}: `{imp.statement}` runs {paths[name]}"
                    chains[name] = [*chains[current], step]
                    queue.append(name)
    return "\n".join(dict.fromkeys(problems))


# ----------------------------------------------------------------------------- the rules
@pytest.mark.parametrize("path", package_modules())
def test_package_imports_follow_the_dependency_graph(path):
    message = package_violations(path)
    assert not message, f"forbidden import between packages:\n{message}"


def _qgen_layer(path: str) -> str | None:
    """``qgen/generation/reader.py`` -> ``qgen.generation``; None for qgen's top-level files."""
    parts = Path(path).parts
    return ".".join(parts[:2]) if len(parts) > 2 else None


def _inference_modules() -> list[str]:
    return [
        p
        for p in package_modules(packages=("qgen",))
        if not any(matches(module_name(ROOT / p), t) for t in QGEN_TRAINING_SIDE)
    ]


def layer_violations(path: str, root: Path = ROOT) -> str:
    """Imports of ``path`` (in a qgen sub-package) of a qgen sub-package below which it is not
    listed in ``QGEN_LAYERS``, or of the top-level ``qgen`` package itself."""
    layer = _qgen_layer(path)
    allowed = (layer, *QGEN_LAYERS[layer])
    bad = [
        (i, "qgen sub-packages other than " + ", ".join(allowed))
        for i in imports_of_file(path, root)
        if matches(i.name, "qgen") and not any(matches(i.name, a) for a in allowed)
    ]
    return describe(path, bad)


@pytest.mark.parametrize("path", package_modules(packages=("qgen",)))
def test_qgen_module_lives_in_a_known_folder(path):
    if path in QGEN_TOP_LEVEL:
        return
    layer = _qgen_layer(path)
    assert layer in QGEN_LAYERS, (
        f"{path}: qgen's code lives in its sub-packages {sorted(QGEN_LAYERS)} "
        f"(a new folder gets a row in QGEN_LAYERS)"
    )


@pytest.mark.parametrize(
    "path", [p for p in package_modules(packages=("qgen",)) if p not in QGEN_TOP_LEVEL]
)
def test_qgen_folders_import_only_the_folders_below_them(path):
    message = layer_violations(path)
    assert not message, f"import against qgen's layers:\n{message}"


@pytest.mark.parametrize("path", _inference_modules())
def test_qgen_inference_module_does_not_import_training(path):
    message = describe(path, forbidden_imports(imports_of_file(path), INFERENCE_FORBIDDEN))
    assert not message, f"qgen inference module imports training code:\n{message}"


@pytest.mark.parametrize("path", _inference_modules())
def test_qgen_inference_module_does_not_reach_training(path):
    message = reach_violations(path, INFERENCE_FORBIDDEN)
    assert not message, f"qgen inference module reaches training code:\n{message}"


@pytest.mark.parametrize(
    "module", sorted({m for allowed in ALLOWED_BY_PACKAGE.values() for m in allowed})
)
def test_allowed_exceptions_import_nothing_of_the_repository(module):
    """An allowed module must not pull the rest of its package in through its own imports."""
    files = module_files(module)
    assert files, f"{module} no longer exists: drop it from ALLOWED_BY_PACKAGE"
    own = PACKAGES + ("studies",)
    message = "\n".join(describe(p, forbidden_imports(imports_of_file(p), own)) for p in files)
    assert not message.strip(), f"{module} imports repository code:\n{message}"


@pytest.mark.parametrize("path", sorted(LAZY_TRAINING_DOORS))
def test_a_lazy_door_is_imported_inside_a_function_only(path):
    tree = ast.parse((ROOT / path).read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {i.name for n in top for i in find_imports(ast.unparse(n), module_name(ROOT / path))}
    for door in LAZY_TRAINING_DOORS[path]:
        assert not any(matches(name, door) for name in names), f"{path} imports {door} at load"
        assert any(matches(i.name, door) for i in _cached_imports(
            (ROOT / path).read_text(), module_name(ROOT / path), False
        )), f"{path} no longer opens {door}: drop it from LAZY_TRAINING_DOORS"  # fmt: skip


def test_test_fixtures_are_not_installed():
    assert not (ROOT / "qgen" / "testing.py").exists()
    assert (ROOT / "tests" / "qgen_fixtures.py").is_file()


def test_pip_installs_the_four_packages_and_not_the_studies():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    include = cfg["options.packages.find"]["include"].split()
    assert {entry.rstrip("*") for entry in include} == set(PACKAGES)
    assert (ROOT / "studies" / "__init__.py").is_file()


# ----------------------------------------------------------------------------- self-tests
def test_checker_finds_every_form_of_import():
    source = """
import os
import qgen.training
import transformers as tf
from qgen import training
from . import pipeline
from ..regularizers import trainer

def lazy():
    from transformers import Trainer
    import importlib
    importlib.import_module("regularizers.callbacks")
    return tf.Seq2SeqTrainer
"""
    names = {(i.name, i.line) for i in find_imports(source, "qgen.sub.mod")}
    assert {
        ("os", 2),
        ("qgen.training", 3),
        ("transformers", 4),
        ("qgen.training", 5),
        ("qgen.sub.pipeline", 6),
        ("qgen.regularizers.trainer", 7),
        ("transformers.Trainer", 10),
        ("regularizers.callbacks", 12),
        ("transformers.Seq2SeqTrainer", 13),
    } <= names
    package = {i.name for i in find_imports("from .data import x", "qgen", is_package=True)}
    assert package == {"qgen.data", "qgen.data.x"}


def test_checker_skips_a_lazy_module_getattr():
    source = "def __getattr__(name):\n    from qgen.training import x\n    return x\n"
    assert find_imports(source, "qgen", is_package=True) == []


def test_checker_reports_a_folder_importing_above_itself(tmp_path):
    (tmp_path / "qgen" / "io").mkdir(parents=True)
    (tmp_path / "qgen" / "io" / "bad.py").write_text("from qgen.generation.reader import x\n")
    message = layer_violations("qgen/io/bad.py", tmp_path)
    assert "qgen/io/bad.py:1" in message and "qgen.generation.reader" in message


def test_checker_matches_whole_names_only():
    imports = find_imports(
        "import qgenerator\nfrom transformers.trainer_utils import x\nimport regularizers_x",
        "decoding.m",
    )
    assert forbidden_imports(imports, ("qgen",) + INFERENCE_FORBIDDEN) == []


def test_checker_reports_module_line_and_import_on_a_scratch_tree(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "decoding" / "bad.py").write_text(
        "import torch\n\n\ndef f():\n    import qgen.cli\n"
    )
    (tmp_path / "qgen" / "squad.py").write_text("from qgen.helper import x\n")
    (tmp_path / "qgen" / "helper.py").write_text("x = 1\nfrom transformers import Trainer\n")
    (tmp_path / "qgen" / "pipeline.py").write_text("from .squad import load\n")

    message = package_violations("decoding/bad.py", tmp_path)
    assert "decoding/bad.py:5" in message and "qgen.cli" in message and "forbidden: qgen" in message
    assert package_violations("qgen/squad.py", tmp_path) == ""

    chain = reach_violations("qgen/pipeline.py", INFERENCE_FORBIDDEN, tmp_path)
    assert "qgen/pipeline.py:1: `from .squad import load` runs qgen/squad.py" in chain
    assert "qgen/helper.py:2: `from transformers import Trainer`" in chain
    assert "forbidden: transformers.Trainer" in chain

    (tmp_path / "qgen" / "__init__.py").write_text("from . import training\n")
    (tmp_path / "qgen" / "training.py").write_text("")
    chain = reach_violations("qgen/helper.py", ("qgen.training",), tmp_path)
    assert "qgen/__init__.py:1: `from . import training`" in chain


def test_checker_allows_regularizers_the_registry_and_nothing_else_of_decoding(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    files = {
        "ok_from.py": "from decoding.registry import Registry\n",
        "ok_import.py": "import decoding.registry\n",
        "bad_decode.py": "import decoding.decode\n",
        "bad_package.py": "from decoding import registry\n",
        "bad_prefix.py": "from decoding.registry_extra import x\n",
        "bad_lazy.py": "def f():\n    from decoding.decode import decode\n",
    }
    for name, source in files.items():
        (tmp_path / "regularizers" / name).write_text(source)

    assert package_violations("regularizers/ok_from.py", tmp_path) == ""
    assert package_violations("regularizers/ok_import.py", tmp_path) == ""
    message = package_violations("regularizers/bad_decode.py", tmp_path)
    assert "regularizers/bad_decode.py:1: `import decoding.decode`" in message
    assert "forbidden: decoding" in message
    for name in ("bad_package.py", "bad_prefix.py", "bad_lazy.py"):
        assert "forbidden: decoding" in package_violations(f"regularizers/{name}", tmp_path)
    # the exception goes one way: decoding still may not import regularizers
    (tmp_path / "decoding" / "bad.py").write_text("from regularizers.base import REGULARIZERS\n")
    assert "forbidden: regularizers" in package_violations("decoding/bad.py", tmp_path)
