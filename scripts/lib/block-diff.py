"""block-diff.py A B: prints how many 512 KiB blocks differ between two image files (the shorter one read as
zeros past its end): an independent count of what an incremental upload must send."""
import sys

BLOCK = 524288


def main():
    n = 0
    with open(sys.argv[1], "rb") as x, open(sys.argv[2], "rb") as y:
        while True:
            p, q = x.read(BLOCK), y.read(BLOCK)
            if not p and not q:
                break
            n += p.ljust(BLOCK, b"\0") != q.ljust(BLOCK, b"\0")
    print(n)


if __name__ == "__main__":
    main()
