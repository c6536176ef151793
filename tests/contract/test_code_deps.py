"""dvc.yaml's code deps are exactly the project code each stage runs.

A stage's code is the import closure of its ``stages/<domain>/<stage>.py``: every project module it
imports, at module level or inside a function, transitively, plus any module it runs as a subprocess
(``python -m pipeline.…``, found as a string naming a project module). A dep missing from dvc.yaml lets
DVC call a stale result up to date; a listed module the stage never runs reruns it for nothing.

    python -m tests.contract.test_code_deps [STAGE]   # print the code deps each stage should list
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

import yaml

from tests.conftest import ROOT

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PACKAGES = ("pipeline", "stages")


def module_file(module: str) -> Path | None:
    """The file of a project module (a package's ``__init__.py``), or None if it is not one."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = ROOT / module.replace(".", "/")
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _named_modules(tree: ast.AST, here: str) -> set[str]:
    """Project modules a module's source names: imports anywhere in it, and ``-m`` style string constants."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parent = here.split(".")[:-node.level]
                base = ".".join([*parent, base] if base else parent)
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                re.fullmatch(r"(pipeline|stages)(\.\w+)+", node.value):
            out.add(node.value)
    return {m for m in out if module_file(m)}


def _with_parents(module: str) -> set[str]:
    """Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


@cache
def closure(module: str) -> frozenset[str]:
    """Every project module that running ``module`` may execute."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        path = module_file(m)
        named = _named_modules(ast.parse(path.read_text()), m if path.name != "__init__.py" else f"{m}.__init__")
        todo.extend(n for new in named for n in _with_parents(new) if n not in seen)
    return frozenset(seen)


def _has_code(path: Path) -> bool:
    """A package ``__init__`` with only a docstring runs nothing worth a dep."""
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)) for s in body)


def closure_files(module: str) -> set[str]:
    files = {module_file(m) for m in closure(module)}
    return {str(f.relative_to(ROOT)) for f in files if f.name != "__init__.py" or _has_code(f)}


def listed_files(deps: list[str]) -> set[str]:
    """The .py files the code deps of a stage cover (a folder covers every module under it)."""
    out: set[str] = set()
    for dep in deps:
        path = ROOT / dep
        if not dep.startswith(PACKAGES) or "${" in dep:
            continue
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        out.update(str(f.relative_to(ROOT)) for f in files if f.name != "__init__.py" or _has_code(f))
    return out


def stage_modules() -> dict[str, tuple[str, list[str]]]:
    """dvc.yaml stage name -> (its ``python -m`` module, its deps)."""
    out = {}
    for name, st in DVC["stages"].items():
        body = st.get("do", st)
        module = re.search(r"python -m (stages\.[\w.]+)", body["cmd"]).group(1)
        out[name] = (module, body["deps"])
    return out


def test_package_inits_run_no_code():
    # the closure leaves out empty __init__ files; one with code must then be listed like any module
    for init in (ROOT / "pipeline").rglob("__init__.py"):
        assert not _has_code(init) or str(init.relative_to(ROOT)) in {
            d for _, deps in stage_modules().values() for d in deps}, init


def test_code_deps_are_the_import_closure():
    problems = []
    for name, (module, deps) in stage_modules().items():
        needed, listed = closure_files(module), listed_files(deps)
        problems += [f"{name}: imports {f}, which dvc.yaml does not list" for f in sorted(needed - listed)]
        problems += [f"{name}: lists {f}, which it never imports" for f in sorted(listed - needed)]
    assert not problems, "\n".join(problems)


def test_the_closure_follows_imports_inside_functions_and_subprocess_modules():
    render = closure("stages.detection.render")
    assert "pipeline.detection.render.blender.worker" in render  # run as `python -m` by the render dataset
    assert "pipeline.detection.refiner.training" not in render
    refine = closure("stages.detection.refine")
    assert "pipeline.detection.detector.squeezedet" not in refine and "pipeline.video.nets" not in refine


def expected_deps(module: str) -> list[str]:
    """The code deps to list for a stage module: its own file first, then the closure sorted, a folder in
    place of its files where the stage runs every module in it."""
    own = module.replace(".", "/") + ".py"
    files = closure_files(module) - {own}
    whole: list[str] = []
    for folder in sorted({str(Path(f).parent) for f in files}, key=len):  # outer folders first
        if folder not in PACKAGES and listed_files([folder]) <= files and \
                not any(folder.startswith(w + "/") for w in whole):
            whole.append(folder)
    for folder in whole:
        files -= listed_files([folder])
    return [own, *sorted([*files, *whole])]


if __name__ == "__main__":
    for name, (module, _) in stage_modules().items():
        if len(sys.argv) < 2 or name in sys.argv[1:]:
            print(f"{name}:\n" + "\n".join(f"  - {f}" for f in expected_deps(module)))
