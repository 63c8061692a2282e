"""Version v3 of the `Refunder` agent (`tests/apps/refunds.py`), an app module."""

import timestep
from tests.apps.refunds import build

refunder = build("v3")
timestep.register_agent(refunder, version="v3")
