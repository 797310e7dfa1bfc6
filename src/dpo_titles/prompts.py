"""The one prompt template, used identically for generation, training and evaluation."""

from __future__ import annotations

# The original project's prompt, word for word; changing it changes what the model is trained on.
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


def generation_prompt(idea: str, n: int, avoid: list[str] | None = None) -> str:
    """The original project's prompt, asking an API model for `n` titles in one answer; a top-up
    names the titles already written so that the model does not repeat them."""
    text = (
        render_prompt(idea)
        + f"\n\nWrite {n} different titles for this video. Answer with a numbered list of "
        f"{n} titles, one per line, and nothing else."
    )
    if avoid:
        text += "\nDo not repeat these titles, already written:\n" + "\n".join(
            f"* {t}" for t in avoid
        )
    return text


JUDGE_INSTRUCTIONS = (
    "You judge YouTube video titles. A better title is more engaging and more likely to be "
    "clicked, while staying accurate to the video idea and between 30 and 75 characters long."
)


def pairwise_prompt(idea: str, title_a: str, title_b: str) -> str:
    return (
        f"{JUDGE_INSTRUCTIONS}\n\n**Video Idea**: {idea}\n\n"
        f"Title A: {title_a}\nTitle B: {title_b}\n\n"
        'Which title is better? Answer in JSON: {"winner": "A" or "B" or "tie", '
        '"rationale": "one short sentence"}.'
    )


def listwise_prompt(idea: str, titles: list[str]) -> str:
    listed = "\n".join(f"{i}. {t}" for i, t in enumerate(titles, 1))
    return (
        f"{JUDGE_INSTRUCTIONS}\n\n**Video Idea**: {idea}\n\n"
        f"Rank these {len(titles)} titles from best to worst:\n{listed}\n\n"
        'Answer in JSON: {"ranking": [the numbers of all titles, best first], '
        '"rationale": "one short sentence"}.'
    )
