"""`python -m workflows --app MODULE`: the worker of `timestep.worker` (what `dbos start` runs)."""

import sys

from timestep.worker import main

if __name__ == "__main__":
    sys.exit(main())
