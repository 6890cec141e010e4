import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


import pytest  # noqa: E402 (after the path set-up above)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A plain-HTTP distribution 2.8 for a test module (registry_servers.start_registry)."""
    from registry_servers import start_registry

    reg = start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture
def server():
    """A scripted HTTP server that answers the registry ping (`GET /v2/`) and what a test
    scripts after it: the faults a good registry never produces."""
    from registry_servers import Reply, ScriptedServer

    s = ScriptedServer()
    s.script("GET", "/v2/", Reply(200, b"{}"))
    yield s
    s.stop()
