"""gateway: the public API and web page; chains caption -> seed -> story and renders cards."""

__version__ = "0.1.0"
