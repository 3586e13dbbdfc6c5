"""python -m model_server: the same as `talkative model-server`."""

import sys

from model_server.server import main

sys.exit(main())
