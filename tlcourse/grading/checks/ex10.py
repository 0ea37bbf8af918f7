"""Checks of exercise 10: the concept questions, compared as salted hashes.

The answers are not written anywhere in the exercise or in this file: each answer is
normalised ("B)" -> "b", "1,000" -> "1000") and its salted SHA-256 compared with the stored one.
"""

from __future__ import annotations

import hashlib
import re

from tlcourse.grading.registry import NotAttempted, NotYet, Spec, exercise

SALT = "tlcourse-ex10"
# question -> (points, first 24 hex digits of sha256(f"{SALT}:{question}:{answer}"), hint)
QUESTIONS = {
    "q1": (1, "b8c9ee99db250cbaa913c524", "Which option reuses knowledge across tasks?"),
    "q2": (1, "423bf176a07618699e4e2e3a", "What do the early layers of an ImageNet CNN detect?"),
    "q3": (1, "611e26d171a38abf159b3222", "In feature extraction, which part learns?"),
    "q4": (1, "2c013e500fa0f8fb6b09bed1", "Fine-tuning trains more than the head; how gently?"),
    "q5": (1, "6b7f2e0b0e3e9c91c21afa8d", "What happens to good features under large updates?"),
    "q6": (1, "ff6910b917c1b983359a1f0e", "Few images + a pretrained model: what overfits least?"),
    "q7": (2, "d4ce8343719f430385cbcdd5", "requires_grad lives on each Parameter, not the module."),
    "q8": (2, "00cfa605d081d15dbdb5f9a7", "A Linear layer has in x out weights plus out biases."),
}


def normalise(answer: object) -> str:
    """The answer as compared: lower case, no spaces, commas or trailing ")" or ".".

    Example:
        >>> normalise("B)"), normalise(" No "), normalise("1,000")
        ('b', 'no', '1000')
    """
    return re.sub(r"[\s,_]", "", str(answer).strip().lower()).rstrip(").")


def answer_hash(question: str, answer: object) -> str:
    """The first 24 hex digits of the salted SHA-256 of the normalised answer (as in QUESTIONS).

    Example:
        >>> answer_hash("q1", "B)") == answer_hash("q1", "b")
        True
    """
    return hashlib.sha256(f"{SALT}:{question}:{normalise(answer)}".encode()).hexdigest()[:24]


EX10 = exercise(
    __name__,
    "Concepts: transfer, fine-tuning, learning rates",
    {"answers": Spec((dict,), 'a dict {"q1": "a", ...}', "answers")},
    summary="transfer learning, feature extraction vs fine-tuning, learning rates",
)


def _question(question: str, points: int, expected: str, hint: str) -> None:
    @EX10.check(f"{question}", points=points, needs=("answers",), hint=hint)
    def _grade(submitted: dict) -> str:
        answer = submitted["answers"].get(question, ...)
        if answer is ... or answer is None:
            raise NotAttempted(f"answers has no {question!r} yet")
        if answer_hash(question, answer) != expected:
            raise NotYet(f"{answer!r} is not right yet")
        return "right"


for _name, (_points, _expected, _hint) in QUESTIONS.items():
    _question(_name, _points, _expected, _hint)
