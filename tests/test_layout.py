"""The shape of the engine (``core/``): every rule written once, modules a newcomer can read, library
modules free of command-line code."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"
MAX_MODULE_LINES = 500
LONG_MODULES = {"core/synthetic/tracer.py"}  # the ray tracer: one algorithm, kept whole
MAX_SOLVER_FUNCTION_LINES = 60
# names that must be defined in exactly one module of the engine
ONE_HOME = (
    "STATUS_OK", "STATUS_FAILED", "STATUS_NO_POSE", "STATUS_NO_VALID_DEPTH", "CONFIDENCE_HIGH",
    "CONFIDENCE_MEDIUM", "CONFIDENCE_LOW", "CONFIDENCE_NONE", "LAYER_POSES", "LAYER_INLIERS", "MODEL_DEMO",
    "MODELS", "PUBLISHED_MODELS", "IMAGE_SUFFIXES", "DEMO_CHECKPOINT", "FORMATS", "SOLVERS", "ProgressBar",
    "hfov_for_focal_35mm", "focal_35mm_for_hfov", "write_depth", "angle_difference_deg", "rotation_matrix",
    "confidence_class", "collect_items", "resolve_device", "Similarity2D", "SolverConfig",
)  # fmt: skip


def _modules() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if "__pycache__" not in p.parts)


def _top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_every_rule_has_one_home():
    homes = defaultdict(list)
    for path in _modules():
        for name in _top_level_names(ast.parse(path.read_text(encoding="utf-8"))):
            homes[name].append(str(path.relative_to(ROOT)))
    for name in ONE_HOME:
        assert len(homes[name]) == 1, (name, homes[name])


def test_no_module_is_too_long_to_read():
    for path in _modules():
        rel = str(path.relative_to(ROOT))
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert rel in LONG_MODULES or lines <= MAX_MODULE_LINES, (rel, lines)


def test_solver_functions_are_short():
    for path in sorted((CORE / "solver").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= MAX_SOLVER_FUNCTION_LINES, (path.name, node.name, length)


def test_command_line_code_lives_in_the_cli_package():
    for path in _modules():
        if path.parent.name == "cli":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "argparse" not in imported, path.relative_to(ROOT)
