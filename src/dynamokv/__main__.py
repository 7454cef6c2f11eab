"""``python -m dynamokv``: the same command as the ``dynamokv`` script.

Owns: nothing but the hand-off. May import: ``dynamokv.cli.main``.
"""

from __future__ import annotations

from dynamokv.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
