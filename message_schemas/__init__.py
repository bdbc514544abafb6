"""The hub's own XSDs for SIF UK 1.x messages (namespace http://www.sifinfo.org/uk/infrastructure/2.x)."""

from pathlib import Path

SCHEMA_DIR = Path(__file__).parent
