"""The package's structure, checked on every test run: the import layers in ``pyproject.toml``
(import-linter), no medium guessed outside ``vqgen.media``, and the size limits of modules and functions."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vqgen"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_import_layers_hold(monkeypatch):
    lint = pytest.importorskip("importlinter.cli")
    monkeypatch.chdir(ROOT)
    status = lint.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    assert status == 0, "an import breaks a contract in pyproject.toml [tool.importlinter]: run lint-imports"


def test_only_the_media_registry_names_a_medium():
    pattern = re.compile(r"modality\s*[!=]=|modality in \(")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _sources()
        if "media" not in path.relative_to(PACKAGE).parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, offenders


def test_modules_and_functions_stay_small():
    too_long = []
    for path in _sources():
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {text.count(os.linesep)} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, too_long
