"""batch kernels (filled in as they land)."""
import numpy as np


#pythran export _placeholder()
def _placeholder():
    return 0
