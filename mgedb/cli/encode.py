"""Commands: encode, info, export."""

from __future__ import annotations
