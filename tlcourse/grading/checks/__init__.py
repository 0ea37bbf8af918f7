"""The checks of the ten exercises, one module each: importing this package registers them."""

from tlcourse.grading.checks import (  # noqa: F401
    ex01,
    ex02,
    ex03,
    ex04,
    ex05,
    ex06,
    ex07,
    ex08,
    ex09,
    ex10,
)
