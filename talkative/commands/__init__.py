"""One module per sub-command; each exposes `register(subparsers)`.

A module's `register` adds its parser and sets `func` (args -> exit code) as default.
"""

COMMANDS = ["api_key", "caption", "generate", "model_server", "models", "serve", "tell"]
