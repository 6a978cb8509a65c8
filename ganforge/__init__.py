"""ganforge: train image GANs with Keras, measure them, and serve them with ONNX Runtime.

This package contains the pieces that every part shares and that need neither
TensorFlow nor ONNX Runtime: image decoding, image grids and PNG encoding,
and the `ganforge` command line.
"""

__version__ = "0.1.0"
