"""Output names recorded with the imported face models' weights."""

from __future__ import annotations


def age_gender() -> list[str]:
    """faceres-deep's 101 outputs: the gender logit (male), then ages 0..99."""
    return ["male"] + [f"age_{k}" for k in range(100)]


def face() -> list[str]:
    return ["background", "face"]
