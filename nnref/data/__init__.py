"""Data utilities: one-hot encoding (loaders and batching arrive with the training driver)."""

from nnref.data.onehot import one_hot

__all__ = ["one_hot"]
