"""Test-side servers that follow documented wire protocols: Mastodon, X API v2, X API v1.1
(twitter-legacy), Bluesky (XRPC); `network.FakeNetwork` holds what they all keep."""
