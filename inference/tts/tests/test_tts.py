"""The TTS server end to end: OpenAI speech API over real HTTP, real Piper and espeak-ng."""

from __future__ import annotations

import concurrent.futures as cf
import re

import httpx
import numpy as np
import pytest
from eindr_tts.testing import decode, duration, start

# one xdist worker per component: its model server starts once
pytestmark = pytest.mark.xdist_group("inference-tts")


REPLY = "Okay, I will remind you to call mum tomorrow at five."


def speak(client: httpx.Client, **body) -> httpx.Response:
    body.setdefault("input", REPLY)
    return client.post("/v1/audio/speech", json=body)


def assert_problem(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["code"] == code and body["detail"]
    return body


# --- engines: valid audio of plausible duration ---------------------------------------------


def test_piper_default_english_voice(client):
    resp = speak(client, response_format="wav")
    assert resp.status_code == 200, resp.text
    assert (
        resp.headers["content-type"] == "audio/wav"
        and resp.headers["x-engine"] == "piper"
    )
    assert resp.headers["x-voice"] == "en_US-joe-medium"
    samples, rate, codec = decode(resp.content)
    assert codec == "pcm_s16le" and rate == 22050
    # 11 words: between 2 and 6 seconds of speech, and not silence
    assert 2.0 < len(samples) / rate < 6.0
    assert np.abs(samples).max() > 1000


@pytest.mark.parametrize(
    "language,voice",
    [
        ("de", "espeak-de"),
        ("fr", "espeak-fr-fr"),
        ("es", "espeak-es"),
        ("pt-BR", "espeak-pt-br"),
    ],
)
def test_espeak_speaks_other_languages(client, language, voice):
    resp = speak(
        client,
        input="Guten Tag. Bonjour. Hola. Olá.",
        language=language,
        response_format="wav",
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-engine"] == "espeak" and resp.headers["x-voice"] == voice
    assert 1.0 < duration(resp.content) < 8.0


def test_language_picks_piper_for_english_and_engine_can_be_forced(client):
    assert (
        speak(client, language="en-US", response_format="wav").headers["x-voice"]
        == "en_US-joe-medium"
    )
    forced = speak(client, model="espeak", response_format="wav")
    assert forced.headers["x-engine"] == "espeak" and forced.headers[
        "x-voice"
    ].startswith("espeak-en")
    assert 1.5 < duration(forced.content) < 8.0
    assert (
        speak(client, voice="alloy", response_format="wav").headers["x-voice"]
        == "en_US-joe-medium"
    )


@pytest.mark.parametrize(
    "fmt,content_type,codec",
    [
        ("mp3", "audio/mpeg", "mp3float"),
        ("opus", "audio/ogg; codecs=opus", "opus"),
        ("aac", "audio/aac", "aac"),
        ("flac", "audio/flac", "flac"),
    ],
)
def test_compressed_formats_decode(client, fmt, content_type, codec):
    resp = speak(client, response_format=fmt)
    assert resp.status_code == 200 and resp.headers["content-type"] == content_type
    samples, rate, got = decode(resp.content)
    assert got == codec
    assert 2.0 < len(samples) / rate < 6.5


def test_pcm_is_24khz_s16le(client):
    resp = speak(client, response_format="pcm")
    assert resp.headers["x-sample-rate"] == "24000"
    assert len(resp.content) % 2 == 0
    seconds = len(resp.content) / 2 / 24000
    assert 2.0 < seconds < 6.0
    wav = speak(client, response_format="wav")
    # Two separate syntheses: Piper's duration noise (noise_w) varies length by a few %.
    assert seconds == pytest.approx(duration(wav.content), rel=0.1)


def test_speed_changes_duration(client):
    normal = duration(speak(client, response_format="wav").content)
    fast = duration(speak(client, response_format="wav", speed=2.0).content)
    slow = duration(speak(client, response_format="wav", speed=0.5).content)
    assert fast < normal * 0.7 and slow > normal * 1.4


def test_streams_sentence_by_sentence(client):
    def sentences_synthesised() -> float:
        m = re.search(
            r'^eindr_tts_inference_seconds_count\{engine="piper"\} (\S+)$',
            client.get("/metrics").text,
            re.MULTILINE,
        )
        # No line yet when nothing was synthesised with Piper in this server before.
        return float(m.group(1)) if m else 0.0

    text = (
        "First sentence here. Second one follows! Is this the third? Yes, and a fourth."
    )
    before = sentences_synthesised()
    with client.stream(
        "POST", "/v1/audio/speech", json={"input": text, "response_format": "wav"}
    ) as resp:
        assert resp.status_code == 200
        chunks = resp.iter_raw()
        first = next(chunks)
        rest = b"".join(chunks)
    assert (
        first.startswith(b"RIFF") and len(first) > 44
    )  # header and the first sentence's samples
    assert sentences_synthesised() - before == 4
    assert 3.0 < duration(first + rest) < 12.0


def test_openai_client_works_unchanged(tts_server):
    from openai import OpenAI

    oa = OpenAI(base_url=tts_server + "/v1", api_key="unused")
    audio = oa.audio.speech.create(
        model="tts-1", voice="alloy", input=REPLY, response_format="wav"
    )
    assert 2.0 < duration(audio.content) < 6.0
    with oa.audio.speech.with_streaming_response.create(
        model="tts-1", voice="nova", input=REPLY, response_format="mp3"
    ) as r:
        data = b"".join(r.iter_bytes())
    assert decode(data)[2].startswith("mp3")


def test_voices_listed_per_language(client):
    body = client.get("/v1/voices").json()
    ids = {v["id"]: v for v in body["voices"]}
    assert (
        ids["en_US-joe-medium"]["engine"] == "piper"
        and ids["en_US-joe-medium"]["language"] == "en-US"
    )
    assert len(body["by_language"]) >= 80  # espeak-ng: about a hundred languages
    assert (
        "en_US-joe-medium" in body["by_language"]["en"]
        and "espeak-de" in body["by_language"]["de"]
    )
    assert body["default_voice"] == "en_US-joe-medium"
    german = client.get("/v1/voices", params={"language": "de"}).json()
    assert german["voices"] and all(
        v["language"].startswith("de") for v in german["voices"]
    )


# --- bad input ------------------------------------------------------------------------------


def test_bad_requests_are_4xx_problems(client):
    assert_problem(speak(client, input=""), 400, "empty_input")
    assert_problem(speak(client, input="   \n "), 400, "empty_input")
    assert_problem(speak(client, input="word " * 801), 413, "input_too_long")
    assert_problem(speak(client, voice="darth-vader"), 400, "unknown_voice")
    assert_problem(speak(client, model="wavenet-9000"), 400, "unknown_model")
    assert_problem(
        speak(client, model="espeak", voice="en_US-joe-medium"),
        400,
        "voice_model_mismatch",
    )
    assert_problem(speak(client, language="tlh"), 400, "unsupported_language")
    body = assert_problem(speak(client, response_format="ogg"), 400, "validation_error")
    assert body["errors"][0]["field"] == "response_format"
    body = assert_problem(speak(client, speed=10), 400, "validation_error")
    assert body["errors"][0]["field"] == "speed"
    assert_problem(
        client.post("/v1/audio/speech", json={"voice": "alloy"}),
        400,
        "validation_error",
    )
    assert_problem(
        client.post(
            "/v1/audio/speech",
            content=b"not json",
            headers={"content-type": "application/json"},
        ),
        400,
        "validation_error",
    )


def test_full_queue_is_503_with_retry_after(tmp_path):
    svc = start(tmp_path, "tts-1slot", {"EINDR_TTS_MAX_QUEUE": "1"})
    try:
        long_text = " ".join(
            f"This is sentence number {i} of a long answer." for i in range(12)
        )
        with (
            httpx.Client(base_url=svc.url, timeout=120) as c,
            cf.ThreadPoolExecutor(4) as pool,
        ):
            responses = list(
                pool.map(
                    lambda _: c.post(
                        "/v1/audio/speech",
                        json={"input": long_text, "response_format": "pcm"},
                    ),
                    range(4),
                )
            )
        statuses = [r.status_code for r in responses]
        assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}
        for r in responses:
            if r.status_code == 503:
                assert_problem(r, 503, "overloaded")
                assert r.headers["retry-after"] == "1"
    finally:
        svc.stop()


def test_health_ready_metrics(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json()["checks"] == {"model": "ok"}
    speak(client, response_format="wav")
    metrics = client.get("/metrics").text
    for name in (
        "eindr_tts_inference_seconds_count",
        "eindr_tts_first_chunk_seconds_count",
        "eindr_tts_queue_depth",
        "eindr_tts_batch_size",
        "eindr_tts_model_info",
    ):
        assert name in metrics


def test_sentence_and_first_clause_splitting():
    from eindr_tts.engines import split_first_clause, split_sentences

    assert split_sentences("Okay. I will remind you!  Is that right?\nYes") == [
        "Okay.",
        "I will remind you!",
        "Is that right?",
        "Yes",
    ]
    assert split_first_clause(
        "Okay, I will remind you to call mum tomorrow at five."
    ) == ["Okay,", "I will remind you to call mum tomorrow at five."]
    assert split_first_clause("Okay, done.") == ["Okay, done."]  # short: whole
    assert split_first_clause("I will remind you to call mum tomorrow at five.") == [
        "I will remind you to call mum tomorrow at five."
    ]
