"""Bytes -> text: BOM, UTF-8, the header's hint, Latin-1 against CP1252, mojibake."""

from __future__ import annotations

from tests.training.corpora.gutenberg_mirror import mojibake
from training.corpora.text_encoding import decode_bytes, repair_mojibake

FRENCH = "Nous étions à l’Étude — « nouveau » — “Charbovari”… Ça, c’était l’été."


def test_utf8_with_and_without_bom():
    assert decode_bytes(FRENCH.encode("utf-8")).text == FRENCH
    found = decode_bytes(b"\xef\xbb\xbf" + FRENCH.encode("utf-8"))
    assert (found.text, found.encoding, found.method) == (FRENCH, "utf-8-sig", "bom")
    found = decode_bytes(FRENCH.encode("utf-16"))
    assert found.text == FRENCH and found.method == "bom"


def test_latin1_declared_and_undeclared():
    text = "Character set encoding: ISO-8859-1\n\nLe bourg de Meung, où naquit l'auteur, être.\n"
    found = decode_bytes(text.encode("latin-1"))
    assert found.text == text and found.encoding == "latin-1" and found.declared == "iso-8859-1"
    assert decode_bytes("Ça a été déjà où".encode("latin-1")).text == "Ça a été déjà où"


def test_cp1252_labelled_latin1_is_cp1252():
    text = "Character set encoding: ISO-8859-1\r\n\r\n" + FRENCH + "\r\n"
    found = decode_bytes(text.encode("cp1252"))
    assert found.encoding == "cp1252" and found.method == "c1-bytes"
    assert found.text == text.replace("\r\n", "\n")
    assert "\x92" not in found.text and "’" in found.text


def test_wrong_utf8_claim_is_verified_not_trusted():
    text = "Character set encoding: UTF-8\n\nUn été à Paris.\n"
    found = decode_bytes(text.encode("latin-1"))
    assert found.text == text and found.encoding == "latin-1"


def test_other_encodings_are_detected():
    text = "Character set encoding: ISO-8859-2\n\nZażółć gęślą jaźń, powiedział Łukasz.\n"
    assert decode_bytes(text.encode("iso-8859-2")).text == text
    russian = (
        "Все счастливые семьи похожи друг на друга, "
        "каждая несчастливая семья несчастлива по-своему."
    )
    found = decode_bytes(russian.encode("cp1251"))
    assert found.text == russian and found.method == "detected"


def test_mojibake_repaired_once_and_twice_over():
    found = decode_bytes(mojibake(FRENCH).encode("utf-8"))
    assert found.text == FRENCH and found.fixes > 0
    assert repair_mojibake(mojibake(mojibake("été")))[0] == "été"
    assert repair_mojibake("Ã‰tÃ© â€™")[0] == "Été ’"
    assert repair_mojibake("Ã©tÃ©")[0] == "été"


def test_correct_text_with_a_tilde_a_is_left_alone():
    for text in ("SÃO PAULO, «IRMÃ», NÃO", "«IRMÃ» e cafÃ©", "São Paulo é linda", FRENCH, "CAFÉ»"):
        assert repair_mojibake(text) == (text, 0)


def test_newlines_normalised():
    assert decode_bytes(b"a\r\nb\rc\n").text == "a\nb\nc\n"
