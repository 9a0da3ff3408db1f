"""The benchmark trial: sleep, then print the objective (Katib's name=value line)."""

import sys
import time

x = float(sys.argv[1])
time.sleep(float(sys.argv[2]))
print(f"acc={1 - (x - 0.3) ** 2:.6f}", flush=True)
