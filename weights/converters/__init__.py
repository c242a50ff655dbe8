"""Converters from official formats to the suite's state-dict layout.

A converter is ``convert(path, entry) -> ConvertedWeights``; entries name theirs by dotted string
(``"mnet.weights.converters.tfslim:convert_graphdef"``) so nothing is imported before it is needed.
"""

from .common import ConvertedWeights

__all__ = ["ConvertedWeights"]
