"""``python -m qgen generate ...`` (also under ``torchrun -m qgen`` / ``accelerate launch -m qgen``)."""

import sys

from qgen.cli import main

sys.exit(main())
