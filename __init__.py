"""The MobileNet suite (Howard et al. 2017, arXiv:1704.04861): one import name for the whole suite.

Layers import downward only: ``backbone → weights → tasks → tasks.engine / tasks.runtime → apps``.
"""

__version__ = "0.1.0"
