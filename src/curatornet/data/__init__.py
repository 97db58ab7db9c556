"""The data layer: generator, UGallery loaders, embeddings, canonical artifacts, statistics.

Modules (import them directly; this package file stays light because the
workflow imports :mod:`curatornet.data.layout` while parsing):

- :mod:`~curatornet.data.synthetic`: the UGallery-like generator;
- :mod:`~curatornet.data.ugallery`: loaders for the research and public-release layouts;
- :mod:`~curatornet.data.embeddings`: the style model and the .npy release format;
- :mod:`~curatornet.data.images`: ResNet50 embeddings of a folder of item images (TensorFlow inside);
- :mod:`~curatornet.data.prepare`: the canonical Parquet artifacts;
- :mod:`~curatornet.data.stats`: the data set statistics;
- :mod:`~curatornet.data.layout`: which files a configured data set consists of.
"""
