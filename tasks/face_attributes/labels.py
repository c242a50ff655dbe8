"""Output names recorded with the face models' weights (imported ones and the suite's own attribute entry)."""

from __future__ import annotations


def age_gender() -> list[str]:
    """faceres-deep's 101 outputs: the gender logit (male), then ages 0..99."""
    return ["male"] + [f"age_{k}" for k in range(100)]


def face() -> list[str]:
    return ["background", "face"]


def celeba_attributes() -> list[str]:
    """CelebA's 40 attribute names in ``list_attr_celeba.txt`` order (``5_o_Clock_Shadow`` … ``Young``)."""
    from .celeba import CELEBA_ATTRIBUTES

    return list(CELEBA_ATTRIBUTES)
