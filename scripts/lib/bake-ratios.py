"""Prints the bake benchmark's floors and ratios from measure.py's results.

Usage: bake-ratios.py RESULTS.jsonl CORES

Each ratio is given twice: from the medians of all runs, and as the median of the ratios of each round (kiln's run
against its peers' runs of the same round). On a shared machine whose disk speed drifts over minutes (the same
`dd` has taken from 3.8 to 9.7 s), the second pairs runs made under the same conditions.
"""
import json
import sys

KILN, ONE_CORE, FILE_DIGEST = "kiln bake", "kiln bake (taskset -c 0)", "kiln bake --file-digest"
DISK = "disk floor: dd conv=fdatasync"
CPU = ["cpu: sha256 of stored bytes", "cpu: inflate (igzip)", "cpu: sha256 of uncompressed", "cpu: sha256 of written bytes"]
CONTAINERD = "containerd: mkfs+mount+pull+sync+umount"


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    results = {o["name"]: o for o in map(json.loads, open(sys.argv[1]))}
    cores = int(sys.argv[2])
    rounds = {name: o["rounds"] for name, o in results.items()}
    n = len(rounds[KILN])

    def cpu_floor(times_of):
        return sum(times_of(name) for name in CPU) / cores

    disk = results[DISK]["median"]
    cpu = cpu_floor(lambda name: results[name]["median"])
    per_round_floor = [max(rounds[DISK][i], cpu_floor(lambda name: rounds[name][i])) for i in range(n)]
    print(f"floors: disk {disk:.2f} s (the image's written bytes, made durable), "
          f"cpu {cpu:.2f} s (the four passes, timed alone, over {cores} cores)")
    print("ratios (lower is better for kiln): from the medians | the median of each round's ratio (the rounds' ratios)")

    def line(label, numerator, denominator, per_round, goal):
        rs = [a / b for a, b in per_round]
        each = " ".join(f"{r:.2f}" for r in rs)
        print(f"  {label:<40} = {numerator / denominator:.2f} | {median(rs):.2f} ({each})  ({goal})")

    k = results[KILN]["median"]
    line("kiln bake / max(floors)", k, max(disk, cpu),
         [(rounds[KILN][i], per_round_floor[i]) for i in range(n)], "goal <= 1.30")
    line("kiln bake / containerd pull", k, results[CONTAINERD]["median"],
         [(rounds[KILN][i], rounds[CONTAINERD][i]) for i in range(n)], "goal <= 0.14")
    line("kiln bake --file-digest / kiln bake", results[FILE_DIGEST]["median"], k,
         [(rounds[FILE_DIGEST][i], rounds[KILN][i]) for i in range(n)], "what the sequential whole-file sha256 costs")
    line(f"kiln on 1 core / kiln on {cores} cores", results[ONE_CORE]["median"], k,
         [(rounds[ONE_CORE][i], rounds[KILN][i]) for i in range(n)], "goal >= 1.70")


if __name__ == "__main__":
    main()
