"""Test doubles for the LLM providers; see README.md in this folder."""

from .llm_servers import (
    CONTENT_FAULTS,
    DEFAULT_FAULT_KINDS,
    FAULT_KINDS,
    TITLE_FORMATS,
    TRANSPORT_FAULTS,
    Brain,
    FakeLLMServer,
    FaultPlan,
    GeminiServer,
    Task,
    TogetherServer,
)

__all__ = [
    "CONTENT_FAULTS",
    "DEFAULT_FAULT_KINDS",
    "FAULT_KINDS",
    "TITLE_FORMATS",
    "TRANSPORT_FAULTS",
    "Brain",
    "FakeLLMServer",
    "FaultPlan",
    "GeminiServer",
    "Task",
    "TogetherServer",
]
