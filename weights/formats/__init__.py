"""Readers for the official weight formats, with no TensorFlow needed.

- :mod:`.graphdef`: TF1 frozen ``GraphDef`` (``.pb``) → nodes and their ``Const`` tensors.
- :mod:`.tflite`: TFLite flatbuffers → tensors (dequantized), operators with options.
- :mod:`.tfjs`: TF.js weights manifest (JSON) + ``.bin`` shards → named arrays (dequantized).

Each reader raises :class:`FormatError` (a ValueError) naming the file when it is not the format claimed.
"""

from __future__ import annotations


class FormatError(ValueError):
    """A file is not (or not a valid instance of) the format it was read as."""


__all__ = ["FormatError"]
