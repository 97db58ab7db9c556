"""``python -m curatornet``: see :mod:`curatornet.cli`."""

from curatornet.cli import main

raise SystemExit(main())
