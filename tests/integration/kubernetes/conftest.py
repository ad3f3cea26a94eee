"""The Kubernetes backend's tests run on the test bed's one-node cluster (testbed/kubernetes.sh).

Each test runs with that cluster's kubeconfig as ``KUBECONFIG`` and with the
registry image the cluster's node holds (imported, never pulled); each must
leave no Pod, Service or Secret with the library's labels behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..support import cluster, testbed


@pytest.fixture(autouse=True)
def _the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    if not cluster.KUBECONFIG.exists():
        pytest.fail(
            f"no kubeconfig at {cluster.KUBECONFIG}: start the test bed's cluster"
            " (bash testbed/kubernetes.sh, which scripts/setup runs)"
        )
    monkeypatch.setenv("KUBECONFIG", str(cluster.KUBECONFIG))
    monkeypatch.setenv("EPHEMERAL_REGISTRY_REGISTRY_IMAGE", testbed.REGISTRY3)


@pytest.fixture(autouse=True)
def no_cluster_leftovers() -> Iterator[None]:
    """Fail a test that leaves a labelled Pod, Service or Secret it made; remove those."""
    before = cluster.labelled()
    yield
    leaked = cluster.labelled() - before
    if leaked:
        cluster.remove(leaked)
        pytest.fail(
            f"the test left {len(leaked)} labelled objects in the cluster: {sorted(leaked)}"
        )
