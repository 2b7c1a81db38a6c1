"""Registry table for the volume kernel family (filled in as kernels land)."""
