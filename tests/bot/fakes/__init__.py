"""Test-side servers that follow documented wire protocols (gateway, Mastodon, X v1.1)."""
