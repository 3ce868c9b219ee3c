"""`python -m modelserver`: the same as `videoedit-modelserver`."""

from .cli import main

main()
