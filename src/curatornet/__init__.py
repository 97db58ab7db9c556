"""CuratorNet: visually-aware recommendation of art images.

Subpackages hold the logic of each workflow stage (data, clusters, sampling,
models, evaluation, stats, plots, report); the Snakemake scripts only adapt it.
TensorFlow is imported only inside ``curatornet.models`` modules that build a model.
"""

__version__ = "0.1.0"
