"""`talkative model-server`: a model server with TensorFlow Serving's flags and protocol.

For hosts where TF Serving has no build (ARM laptops) and for the tests. The flags are
tensorflow_model_server's own (model_server.server.add_flags), so one command line and
one set of config files serve both. See docs/model-server.md.
"""

from __future__ import annotations

import argparse

from model_server.server import add_flags, run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "model-server",
        help="serve SavedModels over TF Serving's gRPC and REST APIs (TF Serving's own flags)",
        description="A model server that speaks TensorFlow Serving's gRPC and REST protocols "
        "over the SavedModels of a model repository, with TF Serving's flags and config files "
        "(models.config, batching_parameters.txt, monitoring.config). See docs/model-server.md.",
    )
    add_flags(p)
    p.set_defaults(func=run)
