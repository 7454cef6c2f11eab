"""``python -m dynamokv.sim``: run the deterministic simulator (see ``dynamokv.sim.run``).

Owns: nothing but the entry point. May import: ``dynamokv.sim.run``.
"""

from __future__ import annotations

import sys

from dynamokv.sim.run import main

sys.exit(main())
