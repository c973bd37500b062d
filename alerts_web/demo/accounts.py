"""The demo accounts' names: also read by programs that log in with them (no Django here)."""

from typing import Final

NURSE: Final = "nurse"
ADMIN: Final = "admin"  # staff, in the planners' group: sees every ward
CLIENT: Final = "demo-integrator"
