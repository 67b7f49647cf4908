"""What every course checker returns, and the self-check quiz."""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, field
from typing import Sequence

__all__ = ["Feedback", "Question", "Quiz", "check_number", "solutions_enabled"]


def solutions_enabled() -> bool:
    """True when ``MARLKIT_COURSE_SOLUTIONS=1``: notebooks then fill in their reference solutions."""
    return os.environ.get("MARLKIT_COURSE_SOLUTIONS", "") == "1"


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer: ``correct``, a one-line ``message`` and, when wrong, ``why``.

    Truthy exactly when correct, so ``assert check_...(answer)`` works in scripts.
    """

    correct: bool
    message: str
    why: str = ""

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        mark = "right" if self.correct else "not yet"
        text = f"{mark}: {self.message}"
        return f"{text}\n  why: {self.why}" if self.why else text

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.correct else "#b35900"
        body = html.escape(self.message) + (f"<br><i>why:</i> {html.escape(self.why)}" if self.why else "")
        mark = "✔ right" if self.correct else "✘ not yet"
        return f'<div style="border-left:4px solid {colour};padding:4px 8px"><b>{mark}</b>: {body}</div>'


def check_number(answer, expected: float, *, name: str, rtol: float = 0.05, atol: float = 0.0,
                 why: str = "") -> Feedback:
    """Compare a numeric ``answer`` with ``expected`` (``|answer − expected| ≤ atol + rtol·|expected|``).

    ``name`` says what the number is (e.g. "the α at which π*(A, A) falls below 0.05"); ``why`` is shown when the
    answer is wrong. A missing (``None``) or non-numeric answer is reported as such, never raised.
    """
    if answer is None:
        return Feedback(False, f"no answer yet for {name}", "replace the None in the answer cell")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return Feedback(False, f"{name}: expected a number, got {type(answer).__name__}")
    if not math.isfinite(value):
        return Feedback(False, f"{name}: {value} is not a finite number")
    if abs(value - expected) <= atol + rtol * abs(expected):
        return Feedback(True, f"{name} = {value:.4g} (oracle: {expected:.4g})")
    side = "too large" if value > expected else "too small"
    return Feedback(False, f"{name} = {value:.4g} is {side}", why)


@dataclass(frozen=True)
class Question:
    """One multiple-choice question: ``options`` to choose from, the index of the ``answer`` and its ``explanation``."""

    text: str
    options: Sequence[str]
    answer: int
    explanation: str

    def __post_init__(self):
        if not 0 <= self.answer < len(self.options):
            raise ValueError(f"answer index {self.answer} outside the {len(self.options)} options of {self.text!r}")

    def check(self, choice: int | None) -> Feedback:
        """Feedback on the chosen option index (``None``: not answered)."""
        if choice is None:
            return Feedback(False, f"not answered: {self.text}")
        if not 0 <= int(choice) < len(self.options):
            return Feedback(False, f"choice {choice} is not one of options 0-{len(self.options) - 1}")
        picked = self.options[int(choice)]
        if int(choice) == self.answer:
            return Feedback(True, f"{picked!r}. {self.explanation}")
        return Feedback(False, f"{picked!r} is not it", self.explanation)


@dataclass
class Quiz:
    """A self-check quiz: :meth:`show` renders it with ipywidgets; :meth:`check` grades a list of choices."""

    questions: list[Question] = field(default_factory=list)

    def check(self, choices: Sequence[int | None]) -> list[Feedback]:
        """Grade ``choices`` (one option index or ``None`` per question).

        Raises:
            ValueError: if the number of choices differs from the number of questions.
        """
        if len(choices) != len(self.questions):
            raise ValueError(f"{len(choices)} choices for {len(self.questions)} questions")
        return [q.check(c) for q, c in zip(self.questions, choices)]

    def score(self, choices: Sequence[int | None]) -> int:
        """How many of ``choices`` are right."""
        return sum(bool(f) for f in self.check(choices))

    def show(self):
        """An ipywidgets view: one radio group per question and a button that prints the feedback."""
        import ipywidgets as widgets

        groups = [widgets.RadioButtons(options=[(o, i) for i, o in enumerate(q.options)], value=None,
                                       layout=widgets.Layout(width="auto")) for q in self.questions]
        output = widgets.Output()
        button = widgets.Button(description="check my answers")

        def grade(_):
            output.clear_output()
            with output:
                for i, f in enumerate(self.check([g.value for g in groups]), 1):
                    print(f"{i}. {f}")

        button.on_click(grade)
        rows = []
        for i, (q, g) in enumerate(zip(self.questions, groups), 1):
            rows += [widgets.HTML(f"<b>{i}.</b> {html.escape(q.text)}"), g]
        return widgets.VBox([*rows, button, output])
