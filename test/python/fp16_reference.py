#!/usr/bin/env python3
"""numpy's float32 -> float16 conversion (IEEE round to nearest even) as a reference for our own.

  fp16_reference.py IN OUT   IN: little-endian float32 values; OUT: their fp16 bits (little-endian uint16).
"""
import sys

import numpy as np

values = np.fromfile(sys.argv[1], dtype="<f4")
with np.errstate(over="ignore", invalid="ignore"):
    values.astype("<f2").view("<u2").tofile(sys.argv[2])
print('{"count": %d}' % values.size)
