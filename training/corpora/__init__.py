"""Offline corpora: builders that turn locally installed texts into train/validation splits."""
