"""dpo-titles: preference-tune a small language model to write engaging YouTube titles."""

__version__ = "0.1.0"
