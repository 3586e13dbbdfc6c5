"""`talkative api-key`: a new API key for the gateway, and the digest its settings hold."""

from __future__ import annotations

import argparse
import sys

from talkative_common.access import API_KEY_HEADER, hash_key, new_key


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "api-key",
        help="make an API key for a client of the gateway, and the hash for its settings",
        description="Print a new random API key (give it to the client, who sends it in the "
        f"{API_KEY_HEADER} header) and its SHA-256 digest (add it to GATEWAY_API_KEY_HASHES, "
        "comma-separated). The gateway keeps only digests, so the key itself is shown once. "
        "With --hash, print the digest of an existing key read from standard input instead.",
    )
    p.add_argument(
        "--hash",
        action="store_true",
        help="read a key from standard input and print only its digest",
    )
    p.set_defaults(func=run)


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
