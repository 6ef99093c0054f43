"""Things built once on first use (converted weights, benchmark models), safely across processes and nodes.

One process builds under a file lock into a temporary folder, which is renamed into place when complete. Every
other process waits on the lock and then reads the finished folder. Nothing here touches torch.distributed, so a
first use inside `accelerate launch` cannot deadlock with a collective on another rank.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock
from transformers.utils import logging

logger = logging.get_logger(__name__)
COMPLETE = ".ail-complete.json"


def cache_dir() -> Path:
    """`$AIL_CACHE`, else `$XDG_CACHE_HOME/ail-trainer`, else `~/.cache/ail-trainer`."""
    if os.environ.get("AIL_CACHE"):
        return Path(os.environ["AIL_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "ail-trainer"


def is_complete(path: Path) -> bool:
    return (path / COMPLETE).is_file()


def materialize(target: Path, build: Callable[[Path], None], message: str | None = None,
                spec: dict | None = None) -> Path:
    """Return `target`, first building it with `build(tmp_folder)` if no process has finished it yet.

    `spec` is stored beside the result; a folder built with another spec is rebuilt.
    """
    target = Path(target)
    if _matches(target, spec):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if _matches(target, spec):  # another process built it while this one waited
            return target
        if message:
            logger.warning(message)
        start = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            build(tmp)
            (tmp / COMPLETE).write_text(json.dumps({"spec": spec, "seconds": time.perf_counter() - start}))
            if target.exists():  # an older or unfinished build: replaced, never mixed with the new one
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _matches(path: Path, spec: dict | None) -> bool:
    if not is_complete(path):
        return False
    return spec is None or json.loads((path / COMPLETE).read_text()).get("spec") == spec
