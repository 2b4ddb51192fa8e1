"""sld: agentic scaling-law discovery.

Propose symbolic law forms, fit their constants, and choose the law that extrapolates best.

Examples
--------
>>> import sld
>>> sld.__version__
'0.1.0'
"""

__version__ = "0.1.0"
