"""The ganforge HTTP service: serves ONNX generators from a model repository with FastAPI and ONNX Runtime.

Nothing in this package imports TensorFlow, so it runs with only the `serve`
or `gpu` extra installed.
"""
