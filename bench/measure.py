"""Runs a command and prints its wall time (s), peak RSS (KiB) and CPU time (s) as JSON.

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
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
peak = ru.ru_maxrss
print(json.dumps({"wall": wall, "peakKiB": peak, "user": ru.ru_utime, "sys": ru.ru_stime,
                  "code": proc.returncode,
                  "stderr": proc.stderr.decode(errors="replace")[-2000:]}))
