"""The one prompt template, used identically for generation, training and evaluation."""

from __future__ import annotations

# The seed project's prompt, word for word; changing it changes what the model is trained on.
PROMPT_TEMPLATE = (
    "Given the YouTube video idea, write an engaging title.\n\n"
    "**Video Idea**: {idea}\n\n"
    "**Additional Guidance**:\n"
    "- Title should be between 30 and 75 characters long\n"
    "- Only return the title idea, nothing else!"
)

MIN_TITLE_CHARS = 30
MAX_TITLE_CHARS = 75


def render_prompt(idea: str) -> str:
    return PROMPT_TEMPLATE.format(idea=idea.strip())


def prompt_messages(idea: str) -> list[dict[str, str]]:
    """The prompt as chat messages, TRL's conversational format."""
    return [{"role": "user", "content": render_prompt(idea)}]


def is_compliant(title: str) -> bool:
    """Whether a title follows the length guidance (30 to 75 characters)."""
    return MIN_TITLE_CHARS <= len(title.strip()) <= MAX_TITLE_CHARS
