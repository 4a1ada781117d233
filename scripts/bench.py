"""``make bench``: run every benchmark, print its numbers, append them to docs/benchmarks.md
under a heading naming the date and the machine."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BENCHMARKS = [
    ("Gateway overhead (issue 2)", ["benchmarks/gateway_overhead.py"]),
    ("Reminders: firing lateness, bulk create, worker memory (issue 3)", ["services/reminders/bench.py", "--bulk"]),
    ("Inference servers (issue 4)", ["inference/bench.py"]),
    ("Voice pipeline (issue 5)", ["services/assistant/bench.py"]),
    ("Notes: vector search at 100k, upload to transcript (issue 6)", ["services/notes/bench.py", "vectors", "--n", "100000"]),
    ("Ledger: balances and contact match (issue 7)", ["services/ledger/bench.py"]),
    ("Calendar sync (issue 8)", ["services/calendar/bench.py"]),
]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main() -> int:
    only = set(sys.argv[1:])
    sections = []
    failed = False
    for title, script in BENCHMARKS:
        path = ROOT / script[0]
        if not path.exists() or (only and not any(o in script[0] for o in only)):
            continue
        print(f"\n=== {title} ===", flush=True)
        proc = subprocess.run([sys.executable, *script], cwd=ROOT, capture_output=True, text=True, check=False)
        print(proc.stdout)
        if proc.returncode != 0:
            failed = True
            print(proc.stderr[-4000:], file=sys.stderr)
            continue
        sections.append(f"### {title}\n\n{proc.stdout.strip()}\n")
    if sections:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        with open(ROOT / "docs" / "benchmarks.md", "a") as out:
            out.write(f"\n## Run of {stamp}\n\nMachine: {machine()}\n\n" + "\n".join(sections))
        print("appended to docs/benchmarks.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
