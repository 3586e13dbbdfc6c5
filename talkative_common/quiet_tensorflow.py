"""Import TensorFlow without its native start-up lines on this process's stderr.

`TF_CPP_MIN_LOG_LEVEL=2` no longer silences everything TensorFlow's C++ side prints
while it loads: since 2.19 some INFO lines are logged through absl before its logging
is set up, and are written whatever the level (tensorflow/tensorflow#100442). On CPUs
with AVX-512 VNNI, 2.21 prints "oneDNN custom operations are on" twice, each after
absl's "WARNING: All log messages before absl::InitializeLog() ..." banner. They bury
a command's one-line error and break log lines that tools parse, so the import runs
with file descriptor 2 redirected to a temporary file, and every captured line except
those INFO lines and that banner is written back. No library does this: the lines come
from native code, below Python's `logging` and `warnings`.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from types import ModuleType

# absl's INFO prefix ("I" MMDD hh:mm:ss.us thread file:line; before absl is set up, the
# date is 0000 and the seconds count from the epoch) and its banner for those lines.
_DROPPED = re.compile(
    r"^(I\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$)"
)


def kept(text: str) -> str:
    """The lines of `text` that are not native INFO lines or absl's banner."""
    lines = text.splitlines(keepends=True)
    return "".join(line for line in lines if not _DROPPED.match(line))


def import_tensorflow() -> ModuleType:
    """`import tensorflow`, with its native INFO lines kept off stderr (the first import
    only; later calls return the module)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    loaded = sys.modules.get("tensorflow")
    if loaded is not None:
        return loaded
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            sys.stderr.write(kept(caught.read().decode("utf-8", errors="replace")))
            sys.stderr.flush()
    return tensorflow
