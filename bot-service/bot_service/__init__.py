"""bot-service: answers images addressed to the bot on a social platform with a story card."""

__version__ = "0.1.0"
