"""Install Triton's perf_analyzer from the tritonclient wheel, without installing that wheel.

The ``perf-analyzer`` package on PyPI is a placeholder; the real binary ships inside the
``tritonclient`` manylinux wheel (``tritonclient-X.data/data/bin/perf_analyzer``). We download that
wheel into a cache (never into the venv: the venv keeps its newer tritonclient for the Python
client), extract the binary, and supply its two shared libraries that a plain Debian lacks:

- ``libcudart.so.12`` from the ``nvidia-cuda-runtime-cu12`` wheel (it is linked, not used: no GPU
  is needed for ``-i http``);
- ``libb64.so.0d`` from Debian's ``libb64-0d``: ``apt-get install`` when root, otherwise
  ``apt-get download`` + ``dpkg-deb -x`` into the cache.

Idempotent and safe to call from parallel processes (a file lock). ``python -m
tabserve.tools.perf_analyzer`` installs and prints the wrapper script to run.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

TRITONCLIENT = "tritonclient==2.40.0"
CUDA_RUNTIME = "nvidia-cuda-runtime-cu12>=12,<13"
B64_PACKAGE = "libb64-0d"
BINARY_MEMBER = "tritonclient-2.40.0.data/data/bin/perf_analyzer"
CUDART = "libcudart.so.12"
LIBB64 = "libb64.so.0d"
STEP_TIMEOUT_S = 300


class PerfAnalyzerUnavailable(RuntimeError):
    """perf_analyzer cannot run here; the message says which step failed and why."""


@dataclass(frozen=True)
class PerfAnalyzer:
    binary: Path
    lib_dir: Path
    wrapper: Path

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment in which the binary finds its libraries."""
        env = dict(os.environ if base is None else base)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(self.lib_dir), env.get("LD_LIBRARY_PATH", "")) if p
        )
        return env


def default_cache_dir() -> Path:
    """Beside the venv's packages (``<venv>/perf_analyzer``): reused, never committed."""
    return Path(sys.prefix) / "perf_analyzer"


def _run(
    cmd: list[str], what: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=STEP_TIMEOUT_S, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PerfAnalyzerUnavailable(f"{what}: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise PerfAnalyzerUnavailable(f"{what} failed ({done.returncode}): {' | '.join(tail)}")
    return done


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download_wheel(requirement: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    name = requirement.split("=")[0].split(">")[0].split("<")[0].replace("-", "_")
    found = sorted(into.glob(f"{name}-*.whl"))
    if found:
        return found[-1]
    _run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--disable-pip-version-check", "-q", "-d", str(into), requirement],
        f"pip download {requirement}",
    )  # fmt: skip
    found = sorted(into.glob(f"{name}-*.whl"))
    if not found:
        raise PerfAnalyzerUnavailable(f"pip download {requirement} left no wheel in {into}")
    return found[-1]


def _extract(wheel: Path, member_suffix: str, target: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(member_suffix)]
        if not names:
            raise PerfAnalyzerUnavailable(f"{wheel.name} holds no {member_suffix}")
        tmp = target.with_suffix(".part")
        with zf.open(names[0]) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.chmod(0o755)
        tmp.replace(target)


def _system_has(library: str) -> bool:
    done = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False)
    return library in done.stdout


def _provide_libb64(lib_dir: Path) -> None:
    if (lib_dir / LIBB64).exists() or _system_has(LIBB64):
        return
    if shutil.which("apt-get") is None:
        raise PerfAnalyzerUnavailable(f"{LIBB64} is missing and there is no apt-get to fetch it")
    if os.geteuid() == 0:
        try:
            _run(["apt-get", "install", "-y", "-q", B64_PACKAGE], f"apt-get install {B64_PACKAGE}")
        except PerfAnalyzerUnavailable:  # a fresh machine has no package lists yet
            _run(["apt-get", "update", "-q"], "apt-get update")
            _run(["apt-get", "install", "-y", "-q", B64_PACKAGE], f"apt-get install {B64_PACKAGE}")
        return
    # Not root: fetch the .deb and unpack just the library into the cache.
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            ["apt-get", "download", B64_PACKAGE], cwd=tmp, capture_output=True, text=True
        )
        debs = list(Path(tmp).glob("*.deb"))
        if done.returncode != 0 or not debs:
            raise PerfAnalyzerUnavailable(
                f"{LIBB64} missing; `apt-get download {B64_PACKAGE}` failed: {done.stderr.strip()}"
            )
        _run(["dpkg-deb", "-x", str(debs[0]), tmp], "dpkg-deb -x")
        for lib in Path(tmp).rglob(f"{LIBB64}*"):
            shutil.copy2(lib, lib_dir / lib.name)


def _missing_libraries(binary: Path, env: dict[str, str]) -> list[str]:
    done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env)
    return [line.split()[0] for line in done.stdout.splitlines() if "not found" in line]


def _write_wrapper(tool: PerfAnalyzer) -> None:
    script = (
        "#!/bin/sh\n"
        "# perf_analyzer from the tritonclient 2.40 wheel, with its libraries (tabserve.tools).\n"
        f'LD_LIBRARY_PATH="{tool.lib_dir}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}" '
        f'exec "{tool.binary}" "$@"\n'
    )
    tool.wrapper.write_text(script)
    tool.wrapper.chmod(0o755)


def ensure_perf_analyzer(cache_dir: Path | None = None) -> PerfAnalyzer:
    """Install (once) and return a perf_analyzer that runs; raise PerfAnalyzerUnavailable if not."""
    cache = cache_dir or default_cache_dir()
    tool = PerfAnalyzer(cache / "bin" / "perf_analyzer", cache / "lib", cache / "perf_analyzer")
    with _locked(cache):
        tool.binary.parent.mkdir(parents=True, exist_ok=True)
        tool.lib_dir.mkdir(parents=True, exist_ok=True)
        if not tool.binary.exists():
            _extract(_download_wheel(TRITONCLIENT, cache / "wheels"), BINARY_MEMBER, tool.binary)
        if not (tool.lib_dir / CUDART).exists():
            wheel = _download_wheel(CUDA_RUNTIME, cache / "wheels")
            _extract(wheel, f"lib/{CUDART}", tool.lib_dir / CUDART)
        _provide_libb64(tool.lib_dir)
        missing = _missing_libraries(tool.binary, tool.env())
        if missing:
            raise PerfAnalyzerUnavailable(f"perf_analyzer still lacks {', '.join(missing)}")
        _run(
            [str(tool.binary), "--version"], "perf_analyzer --version", tool.env()
        )  # it loads and runs
        _write_wrapper(tool)
    return tool


def main() -> None:
    try:
        tool = ensure_perf_analyzer()
    except PerfAnalyzerUnavailable as exc:
        print(f"error: perf_analyzer unavailable: {exc}", file=sys.stderr)
        sys.exit(3)
    print(tool.wrapper)


if __name__ == "__main__":
    main()
