"""Runs commands a number of times and reports the median wall time and peak RSS of each.

Usage: measure.py RUNS NAME [--before SHELL] -- CMD... [--- NAME [--before SHELL] -- CMD...]...
Prints one JSON object per command on stdout: {"name", "median", "runs", "rounds", "rssMiB"}: "runs" sorted,
"rounds" the same times in the order of the rounds, so that a caller can pair each run with its peers' runs of the
same round.
--before runs a shell command ahead of every run, untimed (removing the previous run's output, which on a
filesystem mounted with `discard` costs seconds, then `sync` so that no run pays for another's writeback).

The commands take turns: each round runs every command once, in the order given. On a shared machine whose disk
and CPU speed drift over minutes, a command and its peer are then measured under the same conditions, instead of
one's runs all falling in a fast minute and the other's in a slow one.
"""
import json
import os
import subprocess
import sys
import time


def run_once(argv, before=None):
    if before:
        subprocess.run(["bash", "-c", before], check=True)
    start = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        err = p.stderr.read().decode(errors="replace")[-400:]
        sys.exit(f"{' '.join(argv)} exited {code}: {err}")
    return wall, usage.ru_maxrss / 1024


def summary(walls, rss):
    ordered, walls, rss = list(walls), sorted(walls), sorted(rss)
    return {"median": walls[len(walls) // 2], "runs": walls, "rounds": ordered, "rssMiB": rss[len(rss) // 2]}


def main():
    runs = int(sys.argv[1])
    groups, cur = [], []
    for a in sys.argv[2:]:
        if a == "---":
            groups.append(cur)
            cur = []
        else:
            cur.append(a)
    if cur:
        groups.append(cur)
    commands = []
    for g in groups:
        name, rest = g[0], g[1:]
        before = None
        if rest[0] == "--before":
            before, rest = rest[1], rest[2:]
        sep, argv = rest[0], rest[1:]
        assert sep == "--"
        commands.append((name, before, argv))
    walls = [[] for _ in commands]
    rss = [[] for _ in commands]
    for k in range(runs):
        for i, (name, before, argv) in enumerate(commands):
            w, r = run_once(argv, before)
            walls[i].append(w)
            rss[i].append(r)
        print(f"  round {k + 1} of {runs} done", file=sys.stderr, flush=True)
    for i, (name, _, _) in enumerate(commands):
        r = summary(walls[i], rss[i])
        r["name"] = name
        print(json.dumps(r), flush=True)
        print(f"  {name:<30} median {r['median']:7.2f} s   peak RSS {r['rssMiB']:7.1f} MiB   runs {' '.join(f'{w:.2f}' for w in r['runs'])}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
