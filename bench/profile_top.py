"""Top frames of a py-spy profile of the hub, as the README's tables give them. Measures only.

    py-spy record --pid <hub pid> --duration 15 -r 100 --format raw -o hub.txt
    .venv/bin/python bench/profile_top.py hub.txt [--top 15]

Only the event loop's thread counts (aiosqlite's and the thread pool's threads mostly wait);
its samples are split into idle (waiting in the loop's select), the parts of the hub (by
the outermost frame that names one: the HTTP app, the group commit, the dispatcher, aiormq's
frame reader and writer) and, within the busy samples, the hub functions with the largest
inclusive share.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

PARTS = (
    ("dispatcher (claim, decide, filter, publish, settle)", "run_dispatcher"),
    ("ingest group commit (one transaction per group)", "GroupCommit._run"),
    ("HTTP app (FastAPI, ingest up to the group)", "BodyDeadline.__call__"),
    ("uvicorn protocol (HTTP parsing, writes)", "httptools_impl"),
    ("aiormq frames (publishes, confirms)", "aiormq"),
    ("releaser", "run_releaser"),
)
IDLE = ("Runner.run", "select (", "poll (")


def _samples(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if frames and frames[0].startswith("<module>"):  # the main (event loop) thread
            stacks.append((frames, int(count)))
    return stacks


def _function(frame: str) -> str:
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profile", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    stacks = _samples(args.profile)
    total = sum(n for _, n in stacks)
    parts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, n in stacks:
        joined = ";".join(frames)
        if any(marker in frames[-1] for marker in IDLE):
            parts["idle (waiting for I/O)"] += n
            continue
        part = next((name for name, key in PARTS if key in joined), "other")
        parts[part] += n
        for function in {_function(f) for f in frames if "(hub/" in f or "(adapters/" in f}:
            inclusive[function] += n
    print(f"{args.profile.name}: {total} samples of the event loop's thread")
    print("\n| part | share |\n|---|---|")
    for name, n in parts.most_common():
        print(f"| {name} | {100 * n / total:.1f} % |")
    print("\n| hub function (inclusive) | share |\n|---|---|")
    shown = 0
    for function, n in inclusive.most_common():
        name = function.split(" (")[0]
        if name in ("main", "_serve", "run", "Supervisor._run") or "<locals>" in name:
            continue  # the entry frames every busy sample shares, and inner closures
        print(f"| `{function}` | {100 * n / total:.1f} % |")
        shown += 1
        if shown == args.top:
            break


if __name__ == "__main__":
    main()
