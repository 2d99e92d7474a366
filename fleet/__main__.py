"""`python -m fleet`: the same as the `fleet` command (how `fleet dev` starts its parts, with
the interpreter it runs under)."""
from fleet.cli import main

main()
