"""Stanford Dogs (120 breeds): official-layout reader, zero-shot head from ImageNet, fine-tuning task."""

from .data import NUM_BREEDS, StanfordDogs, breeds
from .task import DogsTask

__all__ = ["NUM_BREEDS", "StanfordDogs", "breeds", "DogsTask"]
