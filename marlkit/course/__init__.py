"""Exercises and self-check quizzes of the notebook course, checked against the exact oracles.

Each teaching notebook ends with exercises: the learner writes an answer (a number, a function, a policy) and
passes it to a ``check_*`` function of this package, which compares it with the exact tabular oracle of
:mod:`marlkit.exact` and returns a :class:`Feedback` (right / wrong / why). The checkers live in one module per
notebook; :mod:`marlkit.course.feedback` holds the pieces they share (feedback, tolerances, quizzes).

When ``MARLKIT_COURSE_SOLUTIONS=1`` (set by the test suite), :func:`solutions_enabled` is true and the notebooks
fill in their reference solutions before checking, so the checkers run under nbval.
"""

from marlkit.course.feedback import Feedback, Question, Quiz, check_number, solutions_enabled

__all__ = ["Feedback", "Question", "Quiz", "check_number", "solutions_enabled"]
