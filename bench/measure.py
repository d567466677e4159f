"""Runs a command and prints its wall time (s) and peak RSS (KiB) as JSON.

Node cannot read a child's rusage; Python's RUSAGE_CHILDREN can.
Usage: python3 bench/measure.py CMD [ARGS...]
"""
import json
import resource
import subprocess
import sys
import time

start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall": wall, "peakKiB": peak, "code": proc.returncode,
                  "stderr": proc.stderr.decode(errors="replace")[-2000:]}))
