"""Self-contained HTML report of a DPO run: inline CSS and SVG, no scripts, no external files."""

from .config import run_configuration
from .html import build_report, save_report

__all__ = ["build_report", "run_configuration", "save_report"]
