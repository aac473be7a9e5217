"""What an offline "Install the server" needs, built without the network: a wheel of this checkout
and a wheelhouse of its dependencies, repacked from the distributions installed in the running
venv (their RECORD lists every file; console scripts are left to pip, which makes them from
entry_points.txt). llama-cpp-python is not repacked: it comes from the cached no-AMX wheel, as
`make install` and tests/test_package.py install it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import zipfile
from collections import deque
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
LLAMA_WHEELS = Path.home() / ".cache" / "starcoder-lsp" / "wheels" / "no-amx"
PACKAGE = "starcoder-lsp"
FROM_CACHE = {"llama-cpp-python"}  # the cached wheel, never repacked
_SKIP = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def build_wheel(dest: Path) -> Path:
    """`pip wheel --no-deps` of this checkout (its build backend, hatchling, from pip's index or cache)."""
    dest.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest), str(REPO)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"pip wheel of the checkout failed:\n{proc.stdout}\n{proc.stderr}")
    (wheel,) = dest.glob("starcoder_lsp-*.whl")
    return wheel


def dependency_closure(root: str = PACKAGE) -> list[metadata.Distribution]:
    """The installed distributions `root` needs (markers evaluated here, extras followed), not itself."""
    seen: dict[str, metadata.Distribution] = {}
    queue: deque[tuple[str, frozenset[str]]] = deque([(root, frozenset())])
    done: set[tuple[str, frozenset[str]]] = set()
    while queue:
        name, extras = queue.popleft()
        if (canonicalize_name(name), extras) in done:
            continue
        done.add((canonicalize_name(name), extras))
        dist = metadata.distribution(name)
        if canonicalize_name(name) != canonicalize_name(root):
            seen[canonicalize_name(name)] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not any(
                    req.marker.evaluate({"extra": extra}) for extra in (extras or {""})):
                continue
            queue.append((req.name, frozenset(req.extras)))
    return list(seen.values())


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def repack(dist: metadata.Distribution, dest: Path) -> Path:
    """A wheel of an installed distribution: its files under site-packages, a fresh RECORD."""
    files = [f for f in dist.files or [] if not str(f).startswith("..")]
    info_dir = next(str(f).split("/")[0] for f in files if str(f).split("/")[0].endswith(".dist-info"))
    site = Path(str(dist.locate_file("")))
    wheel_meta = (site / info_dir / "WHEEL").read_text(encoding="utf-8")
    tag = re.search(r"^Tag: (\S+)$", wheel_meta, re.MULTILINE)
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    out = dest / f"{name}-{dist.version}-{tag.group(1) if tag else 'py3-none-any'}.whl"
    record: list[str] = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for f in files:
            rel = str(f)
            parts = rel.split("/")
            skip = parts[0] == info_dir and parts[-1] in _SKIP
            if skip or "__pycache__" in parts or rel.endswith(".pyc"):
                continue
            path = site / rel
            if not path.is_file():
                continue
            data = path.read_bytes()
            z.writestr(rel, data)
            record.append(f"{rel},{_hash(data)},{len(data)}")
        record.append(f"{info_dir}/RECORD,,")
        z.writestr(f"{info_dir}/RECORD", "\n".join(record) + "\n")
    return out


def wheelhouse(dest: Path) -> list[Path]:
    """Every dependency of starcoder-lsp as a wheel in `dest`, except the ones from the cache."""
    dest.mkdir(parents=True, exist_ok=True)
    return [repack(d, dest) for d in dependency_closure()
            if canonicalize_name(d.metadata["Name"]) not in FROM_CACHE]
