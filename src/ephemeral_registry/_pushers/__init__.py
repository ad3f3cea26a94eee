"""How images get into the registry: one interface (``base``), two pushers beside it.

``crane`` runs ``crane push`` in a one-shot container on the registry's
network; ``native`` uploads over HTTP from this process (``distribution`` is
its client of the OCI distribution API). ``report`` is what either tells the
caller. The ``Registry`` chooses one per push and does what is the same for
both: the push slot, the time limit, the closed registry.
"""
