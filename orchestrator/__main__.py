"""`python -m orchestrator`: the same as `videoedit-orchestrator`."""

from .api.server import main

main()
