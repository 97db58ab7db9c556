"""Recommenders behind one scoring interface (see :mod:`curatornet.models.base`).

TensorFlow is imported only by the modules that build a model
(``curatornet.models.curatornet``, ``curatornet.models.vbpr``), never here.
"""

from curatornet.models.registry import load_scorer  # imports no TensorFlow

__all__ = ["load_scorer"]
