"""Non-saturating GAN losses (Goodfellow et al., 2014) on discriminator logits."""

import tensorflow as tf


def _bce(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Binary cross-entropy that pushes real logits towards 1 and fake logits towards 0."""
    return _bce(tf.ones_like(real_logits), real_logits) + _bce(tf.zeros_like(fake_logits), fake_logits)


def generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Non-saturating generator loss: -log D(G(z)), which keeps gradients large while D wins."""
    return _bce(tf.ones_like(fake_logits), fake_logits)
