"""`python -m readmit` is the `readmit` command (used for child processes of the stack)."""

from readmit.cli import main

main()
