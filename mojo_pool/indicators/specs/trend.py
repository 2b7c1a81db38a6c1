"""Registry table for the trend kernel family (filled in as kernels land)."""
