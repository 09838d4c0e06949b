"""The image builds from what it should: every path it copies exists and reaches the build
context, what the host built or installed does not, and it holds every module its services
import."""

from __future__ import annotations

import fnmatch

import pytest

from tests.deploy.files import ROOT
from tests.test_structure import graph

DOCKERFILE = ROOT / "deploy/Dockerfile"
IGNORED = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
           if line.strip() and not line.startswith("#")]
ENTRY_POINTS = ["orchestrator.__main__", "worker.__main__", "worker.chat.__main__",
                "deploy.preflight.__main__"]


def copied() -> list[str]:
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY") and "--from=" not in line:
            sources.extend(part.rstrip("/") for part in line.split()[1:-1])
    return sources


def ignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` (relative to the context) out: a pattern matches
    the path or one of its parent directories, `**/` matching at any depth."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    for pattern in IGNORED:
        patterns = [pattern, pattern[3:]] if pattern.startswith("**/") else [pattern]
        for prefix in prefixes:
            tails = ["/".join(prefix.split("/")[n:]) for n in range(len(prefix.split("/")))]
            candidates = tails if pattern.startswith("**/") else [prefix]
            if any(fnmatch.fnmatchcase(c, p) for c in candidates for p in patterns):
                return True
    return False


def test_every_path_the_image_copies_exists_in_the_build_context() -> None:
    sources = copied()

    assert sources
    assert [s for s in sources if not (ROOT / s).exists() or ignored(s)] == []


@pytest.mark.parametrize("path", [
    "web/node_modules/react/index.js", ".venv/bin/python", ".local/redis/appendonlydir",
    "deploy/.env", ".git/HEAD", "worker/__pycache__/server.cpython-311.pyc", "web/dist/index.html",
])
def test_what_the_host_built_installed_or_keeps_secret_stays_out_of_the_build(path: str) -> None:
    """Regression: without a .dockerignore, web/node_modules and .venv went into the build
    context, and `COPY web/ ./` put the host's node_modules over the image's own install."""
    assert ignored(path)


def test_the_image_holds_every_module_its_services_import() -> None:
    imports = graph()
    needed, queue = set(), list(ENTRY_POINTS)
    while queue:
        module = queue.pop()
        if module not in needed:
            needed.add(module)
            queue.extend(imports[module])
    paths = {module.replace(".", "/") for module in needed}

    assert [p for p in sorted(paths) if not any(
        p == source.removesuffix(".py") or p.startswith(f"{source}/") for source in copied()
    )] == []
