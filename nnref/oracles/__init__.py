"""Adapters to outside oracles (TensorFlow, Keras). Optional extra ``nnref[tf]``; TensorFlow
is imported only when an adapter is called, never by ``import nnref``."""
