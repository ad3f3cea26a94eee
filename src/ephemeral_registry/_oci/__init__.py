"""Readers of what comes from outside: tar streams, ``docker save`` streams, OCI image
layouts, JSON documents.

Each reader is total: any input ends in a result or in ``FormatError`` (or
its ``NotForPlatform``), which the caller translates once into its own error
(``InvalidSourceError`` for a caller's source, ``ExportError`` for an
engine's export, ``ImageNotFoundError`` for a platform not held). Each is
bounded in memory, linear in time, and returns to the event loop at least
once per chunk it reads (``stream``: one chunk loop, and ``content``: one
read-and-hash, for all of them); a JSON document is bounded before it is
parsed (``documents``), as ``json.loads`` holds the GIL on any thread.
``tests/fuzz/`` fuzzes each one.

The modules: ``tar`` (the one tar reader), ``save`` (``docker save``, on
``tar``), ``layout`` (an OCI layout directory), ``documents`` (JSON),
``content`` (a blob's digests, an image config), ``stream``, ``errors``,
``media_types``, and ``manifests``: the documents a push writes of what they
read.
"""
