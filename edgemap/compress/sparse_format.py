"""The sparse weight storage format lives in edgemap.models.sparse_format (checkpoints read and write it, and
models may not import compress); this name stays for existing callers."""

from edgemap.models.sparse_format import decode, encode

__all__ = ["decode", "encode"]
