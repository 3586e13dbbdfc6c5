"""`talkative model-server`: serve SavedModels over TF Serving's gRPC and REST APIs.

A model server that speaks TensorFlow Serving's gRPC and REST protocols over the
SavedModels of a model repository, with TF Serving's flags and config files
(models.config, batching_parameters.txt, monitoring.config), so one command line and one
set of config files serve both. For hosts where TF Serving has no build (ARM laptops)
and for the tests. See docs/model-server.md.
"""

from __future__ import annotations

import argparse

from model_server.server import add_flags
from model_server.server import run as run  # the command itself (talkative.cli calls `run`)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_flags(p)
