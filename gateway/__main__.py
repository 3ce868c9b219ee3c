"""`python -m gateway`: the same as `videoedit-web`."""

from .cli import main

main()
