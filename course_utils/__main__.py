"""``python -m course_utils ...`` is the same as the ``course`` command."""
from .cli import main

raise SystemExit(main())
