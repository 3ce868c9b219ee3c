"""The folder tree is the architecture: these checks keep it so.

Read from the source (no imports run): no import cycles anywhere; inside the orchestrator, a
package imports only packages below it on the data's path (api -> jobs -> pipeline -> media ->
vision -> models -> the shared root modules); pipeline stages never import each other; nothing
but the gRPC edge and the model client touches protobuf.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

PACKAGES = ("orchestrator", "modelserver", "clients", "evaluation", "bench", "gateway")
# Orchestrator layers, top (called first) to bottom; a module may import its own layer or lower.
# "(entry)": the package itself and `python -m orchestrator`; "(root)": request, config, errors,
# resample (leaves that every layer may use).
RANK = {
    "(entry)": 0,
    "admin": 1,  # videoedit-admin: writes keys and tenant settings into the job store
    "api": 1,
    "legacy_api": 1,
    "jobs": 2,
    "pipeline": 3,
    "media": 4,
    "vision": 5,
    "models": 6,
    "(root)": 7,
}
STAGES = ("extracting", "masking", "propagating", "editing", "smoothing", "saving", "listing", "reusing")
# Where the pipeline's stages running at the same time meet: the only module of it with threads.
CONCURRENCY = "orchestrator.pipeline.concurrency"
THREAD_MODULES = ("threading", "multiprocessing", "asyncio", "_thread")
THREAD_NAMES = ("Thread", "Event", "Condition", "ThreadPoolExecutor", "ProcessPoolExecutor", "sleep")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def first_party_imports(path: Path) -> set[str]:
    """Modules of our packages that `path` imports (at any depth of its code)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import module` imports the module when there is one.
            targets = [f"{base}.{alias.name}" if (f"{base}.{alias.name}" in MODULES) else base for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t.split(".")[0] in PACKAGES}
    return found


FILES = {module_name(p): p for pkg in PACKAGES for p in (REPO_ROOT / pkg).rglob("*.py")}
MODULES = set(FILES)
GRAPH = {name: first_party_imports(path) & MODULES for name, path in FILES.items()}


def test_there_are_no_import_cycles():
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for target in sorted(GRAPH[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def layer(module: str) -> str:
    parts = module.split(".")
    if module in ("orchestrator", "orchestrator.__main__"):
        return "(entry)"
    return parts[1] if parts[1] in RANK else "(root)"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("orchestrator.")))
def test_orchestrator_modules_import_only_their_layer_or_below(module):
    upward = [t for t in GRAPH[module] if t.startswith("orchestrator") and RANK[layer(t)] < RANK[layer(module)]]
    assert not upward, f"{module} ({layer(module)}) imports from higher layers: {upward}"


def test_pipeline_stages_never_import_each_other():
    for stage in STAGES:
        others = {f"orchestrator.pipeline.{s}" for s in STAGES} - {f"orchestrator.pipeline.{stage}"}
        assert not GRAPH[f"orchestrator.pipeline.{stage}"] & others, stage


def test_only_the_edges_touch_protobuf():
    edges = ("orchestrator.api.", "orchestrator.models.grpc_client")
    for name, path in FILES.items():
        if name.startswith("orchestrator.") and not name.startswith(edges):
            assert "_pb2" not in path.read_text(), f"{name} uses protobuf; translate at the edge instead"


def test_model_server_backends_know_nothing_of_serving():
    for name in GRAPH:
        if name.startswith("modelserver.backends"):
            assert all(t.startswith("modelserver.backends") for t in GRAPH[name] if t.startswith("modelserver")), name


def test_the_readmes_layout_names_every_module():
    readme = (REPO_ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    layout = layout[: layout.index("Where does my change go?")]
    missing = [
        str(path.relative_to(REPO_ROOT))
        for path in FILES.values()
        if path.name != "__init__.py" and path.name not in layout
    ]
    assert not missing, f"README's Layout does not mention: {missing}"


def concurrency_problems(tree: ast.AST) -> list[str]:
    """Threads, events, locks and polling loops in `tree`: imports of the thread modules, executors,
    sleeps, and loops that wait with a timeout."""
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [f"imports {a.name}" for a in node.names if a.name.split(".")[0] in THREAD_MODULES]
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in THREAD_MODULES:
                problems.append(f"imports from {node.module}")
            problems += [f"imports {a.name}" for a in node.names if a.name in THREAD_NAMES]
        elif isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in THREAD_NAMES:
                problems.append(f"uses {name} (line {node.lineno})")
        elif isinstance(node, ast.While):
            waits = [
                call
                for call in ast.walk(node)
                if isinstance(call, ast.Call) and any(k.arg == "timeout" for k in call.keywords)
            ]
            problems += [f"polls with a timeout in a loop (line {call.lineno})" for call in waits]
    return problems


@pytest.mark.parametrize(
    "module", sorted(m for m in GRAPH if m.startswith("orchestrator.pipeline.") and m != CONCURRENCY)
)
def test_pipeline_stages_leave_threads_and_waiting_to_the_concurrency_module(module):
    problems = concurrency_problems(ast.parse(FILES[module].read_text()))
    assert not problems, f"{module}: {problems}; use {CONCURRENCY} (StopSignal, StagesBehind, the hand-overs)"


def test_the_concurrency_check_finds_threads_events_and_polling_loops():
    source = """
import threading
from time import sleep
done = threading.Event()
while not future.done():
    future.result(timeout=0.25)
"""
    assert len(concurrency_problems(ast.parse(source))) == 4
