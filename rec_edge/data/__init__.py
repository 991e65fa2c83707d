"""Data: dataset readers, instruction templates, sampling (torch-free)."""
