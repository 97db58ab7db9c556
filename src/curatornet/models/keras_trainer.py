"""What CuratorNet's and VBPR's trainers share: Adam, its learning rate, the weights as arrays.

Imported only by the model modules, which import TensorFlow anyway.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

#: Signature of an int32 index vector of any length: one trace serves every batch size.
INDEX_SPEC = tf.TensorSpec([None], tf.int32)


class KerasTrainer:
    """Base of the trainers: an Adam optimiser over ``model``'s variables.

    ``model`` provides ``weights_dict()`` and ``load_weights_dict()`` (plain
    NumPy arrays by name), which the loop uses to keep the best epoch.
    Subclasses add the compiled step, the pairwise accuracy and a scorer.
    """

    def __init__(self, model: keras.Model, learning_rate: float):
        self.model = model
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(model.trainable_variables)

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.learning_rate.numpy())

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.optimizer.learning_rate.assign(value)

    def minimise(self, tape: tf.GradientTape, loss: tf.Tensor) -> None:
        """One Adam step on ``loss`` recorded by ``tape`` (call inside a compiled step)."""
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    def get_weights(self) -> dict[str, np.ndarray]:
        return self.model.weights_dict()

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        self.model.load_weights_dict(weights)
