"""caption-service: a photo in, ranked captions out."""

__version__ = "0.1.0"
