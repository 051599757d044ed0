#!/usr/bin/env python3
"""Tables for the benches, and the README's copy of them.

  table.py send RESULTS [--markdown]     RESULTS: lines "concurrency messages who rep wall cpu"
  table.py readme NAME                   stdin replaces what README.md holds between
                                         <!-- NAME: begin --> and <!-- NAME: end -->

Every figure is a range over the reps (min-max): one rep is one run of each program,
interleaved, so a ratio is taken within a rep and its range shown across reps.
"""
import collections
import os
import sys
import tempfile


def span(values, fmt):
    lo, hi = min(values), max(values)
    a, b = fmt(lo), fmt(hi)
    return a if a == b else f"{a}–{b}"


def send_table(path, markdown):
    runs = collections.defaultdict(dict)  # (c, n, rep) -> who -> (rate, cpu µs/msg)
    for line in open(path):
        c, n, who, rep, wall, cpu = line.split()
        n = int(n)
        runs[(int(c), n, rep)][who] = (n / float(wall), float(cpu) / n * 1e6)
    plans = sorted({(c, n) for c, n, _ in runs}, key=lambda p: p[0])
    rate = lambda v: f"{v:,.0f}"
    micro = lambda v: f"{v:.0f}"
    ratio = lambda v: f"{v:.2f}"
    head = ["concurrency", "messages", "`full` (default)", "`normal`", "bare lettre",
            "smtp-source", "raw loop", "full / raw", "full / lettre",
            "CPU µs/msg: full", "normal", "lettre", "smtp-source", "raw",
            "CPU full / lettre", "CPU normal / lettre"]
    rows = []
    for c, n in plans:
        reps = [w for (rc, rn, _), w in runs.items() if (rc, rn) == (c, n)]
        col = lambda who, i: [r[who][i] for r in reps]
        per = lambda a, b, i: [r[a][i] / r[b][i] for r in reps]
        rows.append([str(c), f"{n:,}"]
                    + [span(col(w, 0), rate) + "/s" for w in ("full", "normal", "lettre", "source", "raw")]
                    + [span(per("full", "raw", 0), ratio) + "×", span(per("full", "lettre", 0), ratio) + "×"]
                    + [span(col(w, 1), micro) for w in ("full", "normal", "lettre", "source", "raw")]
                    + [span(per("full", "lettre", 1), ratio) + "×", span(per("normal", "lettre", 1), ratio) + "×"])
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        for r in [head] + rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)))


def readme(name):
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")
    text = open(here, encoding="utf-8").read()
    begin, end = f"<!-- {name}: begin -->\n", f"<!-- {name}: end -->"
    if begin not in text or end not in text:
        sys.exit(f"README.md has no {begin.strip()} ... {end} block")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    new = head + begin + sys.stdin.read().rstrip("\n") + "\n" + end + tail
    # Atomic: a temporary file beside it, then a rename.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(here), prefix=".README.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(new)
    os.chmod(tmp, 0o644)
    os.replace(tmp, here)


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send_table(sys.argv[2], "--markdown" in sys.argv)
    elif sys.argv[1] == "readme":
        readme(sys.argv[2])
    else:
        sys.exit(__doc__)
