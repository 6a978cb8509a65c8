"""Keras DCGAN training: data, models, losses, trainer, checkpoints, callbacks and ONNX export.

Importing this package does not import TensorFlow; its modules do.
"""
