"""One module per sub-command of `talkative`.

Each module's docstring is its help: the first line `` `talkative NAME`: summary. `` names
the command and gives the one-line help of `talkative --help`; the rest is the command's
description. Each module has `add_arguments(parser)` and `run(args) -> exit code`, and
may set `EPILOG` (shown under its options).
"""

COMMANDS = ["api_key", "caption", "generate", "model_server", "models", "serve", "tell"]
