"""Readers of what comes from outside: tar streams and OCI image layouts.

Each reader is total: any input ends in a result or in ``FormatError``,
which the caller translates once into its own error (``InvalidSourceError``
for a caller's source, ``ExportError`` for an engine's export). Each is
bounded in memory, linear in time, and returns to the event loop at least
once per chunk it reads. ``tests/fuzz/`` fuzzes each one.
"""
