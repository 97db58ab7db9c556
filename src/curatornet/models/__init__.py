"""Recommenders behind one scoring interface (see :mod:`curatornet.models.base`).

TensorFlow is imported only by the modules that build a model
(``curatornet.models.curatornet``, ``curatornet.models.vbpr``), never here.
A trained directory is restored by :func:`curatornet.models.registry.load_scorer`.
"""
