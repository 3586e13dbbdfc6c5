"""textgen-service: prompt in, generated text out; owns tokenizers and sampling parameters."""

__version__ = "0.1.0"
