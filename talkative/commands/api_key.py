"""`talkative api-key`: make an API key for a client of the gateway, and the hash for its settings.

Print a new random API key (give it to the client, who sends it in the X-API-Key header)
and its SHA-256 digest (add it to GATEWAY_API_KEY_HASHES, comma-separated). The gateway
keeps only digests, so the key itself is shown once. With --hash, print the digest of an
existing key read from standard input instead.
"""

from __future__ import annotations

import argparse
import sys

from talkative_common.access import hash_key, new_key


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--hash",
        action="store_true",
        help="read a key from standard input and print only its digest",
    )


def run(args: argparse.Namespace) -> int:
    if args.hash:
        key = sys.stdin.readline().strip()
        if not key:
            print("error: no key on standard input", file=sys.stderr)
            return 2
        print(hash_key(key))
        return 0
    key = new_key()
    print(f"key (give it to the client; it is not stored anywhere): {key}")
    print(f"hash (append to GATEWAY_API_KEY_HASHES): {hash_key(key)}")
    return 0
