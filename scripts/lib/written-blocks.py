"""Counts the 512 KiB blocks of an image file that hold any non-zero byte: what an EBS snapshot of it stores
(and what a new volume has to initialize). Holes of sparse files are skipped with SEEK_DATA/SEEK_HOLE.

Usage: written-blocks.py IMAGE   -> prints "<written blocks> <written bytes>"
"""
import os
import sys

BLOCK = 512 * 1024


def main():
    path = sys.argv[1]
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    written = set()
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        block = start // BLOCK
        while block * BLOCK < end:
            if block not in written:
                data = os.pread(fd, BLOCK, block * BLOCK)
                if data.count(0) != len(data):
                    written.add(block)
            block += 1
        pos = end
    print(len(written), len(written) * BLOCK)


if __name__ == "__main__":
    main()
