from __future__ import annotations

from textgen_service.alphabet import Alphabet

KJV_LIKE = Alphabet(list("\n !',.:;?ABCDEFGHIJKLMNOPRSTUVWYZabcdefghijklmnopqrstuvwxyz"))
FRENCH_LIKE = Alphabet(list("\n !',-.:;?ADEJLPabcdeilmnoprstuvzàéèêç"))


def test_known_text_is_untouched() -> None:
    fitted = KJV_LIKE.normalise("And God said, Let there be light.")
    assert fitted.text == "And God said, Let there be light." and not fitted.changed


def test_typography_is_folded() -> None:
    assert KJV_LIKE.normalise("It\u2019s \u201cgood\u201d\u2026").text == "It's good..."


def test_accents_fall_back_to_base_letters_only_when_unknown() -> None:
    assert KJV_LIKE.normalise("Noël à Zoë").text == "Noel a Zoe"
    assert FRENCH_LIKE.normalise("été à").text == "été à"
    assert FRENCH_LIKE.normalise("Ève").text == "Eve"  # no È in the alphabet: base letter


def test_missing_case_falls_back_to_other_case() -> None:
    assert KJV_LIKE.normalise("Quiet").replaced == {"Q": "q"}


def test_unknown_symbols_become_single_spaces() -> None:
    fitted = KJV_LIKE.normalise("cats \U0001f408 & dogs #1")
    assert fitted.text == "cats dogs"
    assert fitted.replaced["\U0001f408"] == "" and fitted.replaced["&"] == ""
    assert KJV_LIKE.normalise("year 2024 AD").text == "year AD"  # digits unknown: spaces


def test_newline_and_carriage_returns() -> None:
    assert KJV_LIKE.normalise("a\r\nb").text == "a\nb"
    assert FRENCH_LIKE.normalise("a\tb").text == "a b"


def test_round_trip_encoding() -> None:
    ids = FRENCH_LIKE.encode("le roi")
    assert FRENCH_LIKE.decode(ids) == "le roi"
