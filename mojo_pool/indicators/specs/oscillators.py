"""Registry table for the oscillators kernel family (filled in as kernels land)."""
