"""TensorFlow's CPU thread pools, set once per process before any model runs."""

from __future__ import annotations

import os
import warnings


def configure_threads(threads: int) -> None:
    """Use `threads` CPU threads for TensorFlow's ops (0: TensorFlow's default, all cores)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if not threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        # TensorFlow already ran in this process (a notebook, a test session): its thread
        # pools are fixed by now, and the work runs on them unchanged.
        warnings.warn(
            f"TensorFlow is already initialised: threads={threads} has no effect", stacklevel=2
        )
