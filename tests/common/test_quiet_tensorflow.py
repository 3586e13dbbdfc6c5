"""TensorFlow's native start-up lines are kept off stderr, and nothing else is
(talkative_common/quiet_tensorflow.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from talkative_common.quiet_tensorflow import kept

ROOT = Path(__file__).resolve().parents[2]
BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
# As TensorFlow 2.21 prints them on a CPU with AVX-512 VNNI, whatever TF_CPP_MIN_LOG_LEVEL says.
ONEDNN = (
    "I0000 00:00:1796045589.893330   15205 port.cc:153] oneDNN custom operations are on. "
    "You may see slightly different numerical results due to floating-point round-off errors "
    "from different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.\n"
)
ERROR = "E0000 00:00:1758131045.203198 3722035 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"


def run_python(program: str, modules: Path) -> subprocess.CompletedProcess[str]:
    """`program` in a fresh interpreter that finds `modules` first (a stand-in tensorflow)."""
    return subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={"PYTHONPATH": f"{modules}:{ROOT}", "PATH": "/usr/bin:/bin"},
    )


def test_only_info_lines_and_the_banner_are_dropped() -> None:
    later = "I1130 13:42:07.125000   15205 cpu_feature_guard.cc:227] optimized\n"
    warning = "W0000 00:00:1796045589.9   15205 util.cc:1] a warning\n"
    text = BANNER + ONEDNN + ERROR + later + warning + "plain text from Python\n"
    assert kept(text) == ERROR + warning + "plain text from Python\n"
    assert kept("") == "" and kept("Info: I0000 is not at the start\n") == (
        "Info: I0000 is not at the start\n"
    )


def test_the_import_keeps_info_lines_off_stderr_and_passes_the_rest(tmp_path: Path) -> None:
    # A stand-in `tensorflow` that writes to file descriptor 2 as native code does, and to
    # sys.stderr as Python does; the real one prints its lines only on some CPUs.
    (tmp_path / "tensorflow.py").write_text(
        textwrap.dedent(
            f"""
            import os, sys
            os.write(2, {(BANNER + ONEDNN).encode()!r})
            os.write(2, {ERROR.encode()!r})
            print("a Python warning", file=sys.stderr)
            os.write(2, {ONEDNN.encode()!r})
            LEVEL = os.environ["TF_CPP_MIN_LOG_LEVEL"]
            """
        )
    )
    program = (
        "import sys; from talkative_common.quiet_tensorflow import import_tensorflow; "
        "tf = import_tensorflow(); assert import_tensorflow() is tf; "
        "print('level', tf.LEVEL); print('after', file=sys.stderr)"
    )
    out = run_python(program, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "level 2\n"
    assert out.stderr == ERROR + "a Python warning\nafter\n"


def test_a_failed_import_still_gives_stderr_back(tmp_path: Path) -> None:
    (tmp_path / "tensorflow.py").write_text(
        f"import os\nos.write(2, {ONEDNN.encode()!r})\nraise ImportError('no such library')\n"
    )
    program = (
        "import sys\nfrom talkative_common.quiet_tensorflow import import_tensorflow\n"
        "try:\n    import_tensorflow()\nexcept ImportError as e:\n"
        "    print('refused:', e, file=sys.stderr)\n"
    )
    out = run_python(program, tmp_path)
    assert out.returncode == 0 and out.stderr == "refused: no such library\n", out.stderr
