"""The package installs like users install it: from a built wheel, into a venv outside the checkout.

The sdist is built from the checkout and the wheel from the sdist (so neither may lack a file the
other needs), checked against `pip wheel --no-deps .`, installed into a fresh venv in a temp dir
with llama-cpp-python from the cached no-AMX wheel (everything else from the index, through pip's
cache), and then run from a temp dir, where the checkout cannot be imported: `--version`, the
bundled catalogue, `doctor`, and a real completion on the cached Qwen 0.5B. Everything is written
under pytest's temp dir (plus pip's own download cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from lsp_server import __version__

pytestmark = [pytest.mark.real_model, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[1]
LLAMA_WHEELS = Path.home() / ".cache" / "starcoder-lsp" / "wheels" / "no-amx"
SAMPLE = "def add(a: int, b: int) -> int:\n    return \n"


def run(argv: list[str | Path], cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{argv}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def clean_env(tmp: Path) -> dict[str, str]:
    """No venv, no PYTHONPATH into the checkout, and the user's config and caches in `tmp`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "STARCODER_LSP_CACHE_DIR")}
    env.update(XDG_CONFIG_HOME=str(tmp / "config"), XDG_CACHE_HOME=str(tmp / "cache"),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def package_files(names: list[str]) -> set[str]:
    """The lsp_server/ members of a wheel or sdist, relative to the package's parent."""
    out = set()
    for name in names:
        part = name.split("/", 1)[1] if not name.startswith("lsp_server/") else name
        if part.startswith("lsp_server/") and not part.endswith("/"):
            out.add(part)
    return out


def test_wheel_from_sdist_installs_and_completes(qwen_gguf: Path, tmp_path: Path) -> None:
    llama = sorted(LLAMA_WHEELS.glob("llama_cpp_python-0.3.36-*.whl"))
    if not llama:
        pytest.skip(f"no cached llama-cpp-python wheel in {LLAMA_WHEELS} (`make install` builds it)")
    env = clean_env(tmp_path)
    dist = tmp_path / "dist"

    # A build venv with hatchling (the build backend), outside the checkout.
    tools = tmp_path / "tools"
    run([sys.executable, "-m", "venv", tools], tmp_path, env)
    run([tools / "bin" / "python", "-m", "pip", "install", "-q", "hatchling>=1.21"], tmp_path, env)
    run([tools / "bin" / "python", "-m", "hatchling", "build", "-t", "sdist", "-d", dist], ROOT, env)
    (sdist,) = dist.glob("starcoder_lsp-*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path / "src", filter="data")
        sdist_names = tar.getnames()
    assert any(n.endswith("/models.toml") for n in sdist_names)
    top = {n.split("/")[1] for n in sdist_names if n.count("/") >= 1}
    assert not top & {"tests", "testkit", "benchmarks", "vscode-extension", ".venv"}, top
    assert not any("__pycache__" in n for n in sdist_names)
    (src,) = (tmp_path / "src").iterdir()
    run([tools / "bin" / "python", "-m", "hatchling", "build", "-t", "wheel", "-d", dist], src, env)
    (wheel,) = dist.glob("starcoder_lsp-*.whl")
    assert wheel.name.startswith(f"starcoder_lsp-{__version__}-")

    # The same wheel as `pip wheel --no-deps .` from the checkout.
    direct = tmp_path / "direct"
    run([tools / "bin" / "python", "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", direct, ROOT], tmp_path, env)
    (direct_wheel,) = direct.glob("starcoder_lsp-*.whl")
    with zipfile.ZipFile(wheel) as z, zipfile.ZipFile(direct_wheel) as zd:
        names = z.namelist()
        assert package_files(names) == package_files(zd.namelist())
        metadata = next(z.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    files = package_files(names)
    assert "lsp_server/data/models.toml" in files
    assert "lsp_server/playground/static/index.html" in files  # the playground's bundled page
    on_disk = {str(p.relative_to(ROOT)) for p in (ROOT / "lsp_server").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert on_disk <= files, f"missing from the wheel: {sorted(on_disk - files)}"
    assert "Requires-Dist: llama-cpp-python==0.3.36" in metadata

    # A fresh venv, outside the checkout; llama-cpp-python from the cached wheel.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], tmp_path, env)
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--find-links", LLAMA_WHEELS,
         wheel], tmp_path, env, timeout=900)
    work = tmp_path / "work"
    work.mkdir()
    exe = venv / "bin" / "starcoder-lsp"
    assert run([exe, "--version"], work, env).stdout.strip() == f"starcoder-lsp {__version__}"
    where = run([venv / "bin" / "python", "-c", "import lsp_server; print(lsp_server.__file__)"],
                work, env).stdout.strip()
    assert Path(where).is_relative_to(venv), f"imported {where}, not the installed package"
    listing = run([exe, "models", "list"], work, env).stdout
    assert "qwen2.5-coder-0.5b" in listing and "starcoder2-3b" in listing
    assert str(venv) in listing and "lsp_server/data/models.toml" in listing

    # A real completion, and doctor, with the installed package (the model by path: nothing is
    # written to the model cache).
    (work / "sample.py").write_text(SAMPLE, encoding="utf-8")
    out = run([exe, "complete", "sample.py:2:12", "--model", qwen_gguf, "--threads", "2",
               "--json"], work, env).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert "a + b" in result["text"], result
    doctor = subprocess.run([str(exe), "doctor", "--json", "--no-speed", "--model", str(qwen_gguf),
                             "--threads", "2"], cwd=work, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    report = json.loads(doctor.stdout)
    assert report["versions"]["starcoder-lsp"] == __version__
    assert report["versions"]["llama-cpp-python"] == "0.3.36"
    assert report["build"]["import_error"] is None
    assert doctor.returncode == report["exit_status"] == 0, report["findings"]
