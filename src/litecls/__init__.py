"""litecls: on-device image classification with LiteRT (TensorFlow Lite)."""

__version__ = "0.1.0"
