"""Data utilities: one-hot encoding, mini-batching, dataset loaders (NumPy only; the digits
loader needs scikit-learn, the ``data`` extra)."""

from nnref.data.batching import kfold_batches, kfold_sizes, shuffled_batches
from nnref.data.datasets import (
    Dataset,
    load_dataset,
    load_digits,
    load_mnist,
    parse_idx,
    toy_two_feature,
)
from nnref.data.onehot import one_hot

__all__ = [
    "Dataset",
    "kfold_batches",
    "kfold_sizes",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "one_hot",
    "parse_idx",
    "shuffled_batches",
    "toy_two_feature",
]
