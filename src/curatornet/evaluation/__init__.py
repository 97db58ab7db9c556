"""Evaluation of the paper's Table 2: the inventory replay protocol, the
ranking metrics and the batched scoring of every method."""
