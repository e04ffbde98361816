from __future__ import annotations

import pytest

from .harness import Net, hub_config, spoke_config


@pytest.fixture
def net() -> Net:
    """hub1 with spoke1 and spoke2 registered (phase 3: redirect + shortcut)."""
    n = Net()
    n.add("hub1", hub_config())
    n.add("spoke1", spoke_config("spoke1"))
    n.add("spoke2", spoke_config("spoke2"))
    n.start()
    return n
