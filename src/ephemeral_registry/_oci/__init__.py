"""Readers of what comes from outside: tar streams, OCI image layouts, JSON documents.

Each reader is total: any input ends in a result or in ``FormatError``,
which the caller translates once into its own error (``InvalidSourceError``
for a caller's source, ``ExportError`` for an engine's export). Each is
bounded in memory, linear in time, and returns to the event loop at least
once per chunk it reads; a JSON document is bounded before it is parsed
(``documents``), as ``json.loads`` holds the GIL on any thread.
``tests/fuzz/`` fuzzes each one.
"""
