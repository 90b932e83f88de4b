"""``python -m course_utils ...`` is the same as the ``course`` command."""
from .machinery.cli import main

raise SystemExit(main())
