"""Version v1 of the `Refunder` agent (`tests/apps/refunds.py`), an app module."""

import timestep
from tests.apps.refunds import build

refunder = build("v1")
timestep.register_agent(refunder, version="v1")
