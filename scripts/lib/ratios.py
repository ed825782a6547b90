"""Prints a benchmark's ratios from measure.py's results.

Usage:
  ratios.py bake RESULTS.jsonl CORES        the bake case: floors, then kiln against them and its peers
  ratios.py pairs RESULTS.jsonl 'LABEL|NUMERATOR|DENOMINATOR|NOTE'...

Each ratio is given twice: from the medians of all runs, and as the median of the ratios of each round (a run
against the other command's run of the same round). On a shared machine whose disk speed drifts over minutes (the
same `dd` has taken from 3.8 to 9.7 s), the second pairs runs made under the same conditions.
"""
import json
import sys


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def load(path):
    return {o["name"]: o for o in map(json.loads, open(path))}


def line(label, numerator, denominator, per_round, note):
    """One ratio: of the medians, then the median of the rounds' ratios and each of them."""
    rs = [a / b for a, b in per_round]
    each = " ".join(f"{r:.2f}" for r in rs)
    print(f"  {label:<42} = {numerator / denominator:.2f} | {median(rs):.2f} ({each})" + (f"  ({note})" if note else ""))


def header():
    print("ratios (lower is better for kiln): from the medians | the median of each round's ratio (the rounds' ratios)")


def pair(results, label, numerator, denominator, note):
    a, b = results[numerator], results[denominator]
    line(label, a["median"], b["median"], list(zip(a["rounds"], b["rounds"])), note)


KILN, ONE_CORE, FILE_DIGEST = "kiln bake", "kiln bake (taskset -c 0)", "kiln bake --file-digest"
DISK = "disk floor: dd conv=fdatasync"
CPU = ["cpu: sha256 of stored bytes", "cpu: inflate (igzip)", "cpu: sha256 of uncompressed", "cpu: sha256 of written bytes"]
CONTAINERD = "containerd: mkfs+mount+pull+sync+umount"


def bake(results, cores):
    rounds = {name: o["rounds"] for name, o in results.items()}
    n = len(rounds[KILN])

    def cpu_floor(times_of):
        return sum(times_of(name) for name in CPU) / cores

    disk = results[DISK]["median"]
    cpu = cpu_floor(lambda name: results[name]["median"])
    per_round_floor = [max(rounds[DISK][i], cpu_floor(lambda name: rounds[name][i])) for i in range(n)]
    print(f"floors: disk {disk:.2f} s (the image's written bytes, made durable), "
          f"cpu {cpu:.2f} s (the four passes, timed alone, over {cores} cores)")
    header()
    k = results[KILN]["median"]
    line("kiln bake / max(floors)", k, max(disk, cpu), list(zip(rounds[KILN], per_round_floor)), "goal <= 1.30")
    pair(results, "kiln bake / containerd pull", KILN, CONTAINERD, "goal <= 0.14")
    pair(results, "kiln bake --file-digest / kiln bake", FILE_DIGEST, KILN, "what the sequential whole-file sha256 costs")
    pair(results, f"kiln on 1 core / kiln on {cores} cores", ONE_CORE, KILN, "goal >= 1.70")


def main():
    what, path = sys.argv[1], sys.argv[2]
    results = load(path)
    if what == "bake":
        bake(results, int(sys.argv[3]))
    elif what == "pairs":
        header()
        for spec in sys.argv[3:]:
            label, numerator, denominator, note = spec.split("|")
            pair(results, label, numerator, denominator, note)
    else:
        sys.exit(f"unknown report {what}")


if __name__ == "__main__":
    main()
