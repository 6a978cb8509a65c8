"""Sample-quality metrics for generators. Needs numpy and scipy, never TensorFlow."""
