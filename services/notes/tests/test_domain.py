"""The pure rules: fusion, audio sniffing, neutralisation, field validation, signing."""

from __future__ import annotations

import html

from eindr_notes import domain


def test_rrf_fuses_two_rankings_and_rewards_agreement():
    fused = domain.rrf(["a", "b", "c"], ["c", "d"], limit=10)
    ids = [f.id for f in fused]
    assert ids[0] == "c"  # in both lists: 1/63 + 1/61 beats 1/61 alone
    assert set(ids) == {"a", "b", "c", "d"}
    top = fused[0]
    assert top.semantic_rank == 3 and top.fulltext_rank == 1
    assert abs(top.score - (1 / 63 + 1 / 61)) < 1e-12
    assert domain.rrf([], [], limit=5) == []
    assert [f.id for f in domain.rrf(["x", "y"], [], limit=1)] == ["x"]


def test_sniff_audio_recognises_containers_and_refuses_the_rest():
    assert domain.sniff_audio(b"RIFF\x00\x00\x00\x00WAVEfmt ") == "wav"
    assert domain.sniff_audio(b"OggS\x00\x02") == "ogg"
    assert domain.sniff_audio(b"fLaC\x00") == "flac"
    assert domain.sniff_audio(b"ID3\x04\x00") == "mp3"
    assert domain.sniff_audio(b"\xff\xfb\x90\x64") == "mp3"
    assert domain.sniff_audio(b"\x00\x00\x00\x20ftypM4A \x00") == "m4a"
    assert domain.sniff_audio(b"\x1a\x45\xdf\xa3\x9f") == "webm"
    for junk in (b"", b"%PDF-1.7", b"<html>", b"\x89PNG\r\n\x1a\n", b"hello world, not audio"):
        assert domain.sniff_audio(junk) is None


def test_neutralise_script_tags_and_markdown_links():
    raw = '<script>alert("x")</script> & [click me](javascript:alert(1)) ![img](http://e/x.png) [ref]: javascript:x'
    out = domain.neutralise(raw)
    assert "<" not in out and ">" not in out and '"' not in out
    assert "[" not in out and "]" not in out  # no link, image or reference definition can form
    assert "](" not in out
    assert html.unescape(out) == raw == domain.unneutralise(out)
    assert domain.neutralise("plain words stay plain") == "plain words stay plain"
    assert domain.neutralise(None) is None


def test_field_problems_name_each_bad_field():
    assert domain.field_problems("ok", "fine\nmultiline\ttext", ["home", "wifi"]) == []
    errors = domain.field_problems("a\x00b", "x" * (domain.MAX_TEXT + 1), ["ok", "bad,tag", "y" * 51])
    fields = {e["field"] for e in errors}
    assert fields == {"title", "text", "tags[1]", "tags[2]"}
    assert domain.field_problems("line\nbreak", None, None)[0]["field"] == "title"
    assert domain.field_problems(None, None, ["t"] * 21)[0]["field"] == "tags"
    assert domain.field_problems("\ud800", None, None)[0]["message"].startswith("must be valid Unicode")


def test_query_rules():
    assert domain.query_problem("") and domain.query_problem("   ")
    assert domain.query_problem("x" * 501)
    assert domain.query_problem("a\x00")
    assert domain.query_problem("x" * 500) is None


def test_audio_signature_binds_note_key_and_expiry():
    sig = domain.audio_signature("s" * 32, "n1", "k1", 2000)
    assert domain.signature_ok("s" * 32, "n1", "k1", 2000, sig, now=1000)
    assert not domain.signature_ok("s" * 32, "n1", "k1", 2000, sig, now=2001)  # expired
    assert not domain.signature_ok("s" * 32, "n2", "k1", 2000, sig, now=1000)  # another note
    assert not domain.signature_ok("s" * 32, "n1", "k2", 2000, sig, now=1000)  # replaced audio
    assert not domain.signature_ok("t" * 32, "n1", "k1", 2000, sig, now=1000)  # another secret


def test_storage_keys_never_carry_the_uid():
    key = domain.storage_key("../../etc/passwd", "abc", "wav")
    assert ".." not in key and "/" in key and key.endswith("/abc.wav")
    assert key.startswith(domain.storage_prefix("../../etc/passwd"))


def test_access_levels_allow_exactly_their_actions():
    allowed = {level: {a for a in domain.ACTIONS if domain.permits(level, a)} for level in domain.ACCESS_LEVELS}
    assert allowed == {"owner": {"read", "edit", "delete", "retry"}, "edit": {"read", "edit"}, "view": {"read"}}
    assert not domain.permits("admin", "read") and not domain.permits("owner", "share")
