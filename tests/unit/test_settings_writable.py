"""An unwritable TABSERVE_HOME is one line naming the directory and the uid, not a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tabserve.errors import UserError
from tabserve.settings import require_writable


def test_a_writable_directory_is_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    assert require_writable(target, "the cache") == target
    assert target.is_dir() and list(target.iterdir()) == []  # the probe file is gone


def test_an_unwritable_directory_names_itself_and_the_uid(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(
        UserError, match=rf"the cache {blocker}/x is not writable by uid {os.getuid()}"
    ):
        require_writable(blocker / "x", "the cache")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to drop to another uid")
def test_serve_with_a_home_the_user_cannot_write_is_one_line(titanic_model_dir: Path) -> None:
    """As in the image: uid 10001 and a home mounted from the host, owned by root, mode 555."""
    # pytest's own temporary directories are private to root: uid 10001 could not even read
    # the model there.
    root = Path(tempfile.mkdtemp(prefix="tabserve-unwritable-"))
    try:
        root.chmod(0o755)
        model = shutil.copytree(titanic_model_dir, root / "model")
        home = root / "home"
        home.mkdir()
        home.chmod(0o555)
        done = subprocess.run(
            ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups",
             sys.executable, "-m", "tabserve", "serve", str(model), "--port", "1"],
            env={**os.environ, "TABSERVE_HOME": str(home)},
            capture_output=True, text=True, timeout=120, cwd=root,
        )  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"error: TABSERVE_HOME (prediction log and spool) {home} is not writable by uid 10001 "
        "(Permission denied): mount a volume that uid can write, or point TABSERVE_HOME elsewhere"
    ]
