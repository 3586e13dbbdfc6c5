"""Corpus building, training and export of every Talkative model."""
