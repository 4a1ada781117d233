"""Shared helpers for the deploy tests live in deploy_helpers.py next to this file."""

from __future__ import annotations

import sys
from pathlib import Path

# importlib import mode does not put test folders on sys.path; the helpers are imported by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))
