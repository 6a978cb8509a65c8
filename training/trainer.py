"""The GAN training step: one compiled tf.function that updates the discriminator and the generator."""

import keras
import tensorflow as tf

from training.losses import discriminator_loss, generator_loss


class GANTrainer:
    """Both nets, both Adam optimizers, the latent noise source and the global step counter.

    Each step draws as many latent vectors as the batch holds, so a last partial batch trains
    like any other.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        learning_rate: float,
        beta_1: float,
        seed: int,
    ) -> None:
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = generator.input_shape[-1]
        self.generator_optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1)
        self.discriminator_optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1)
        self.generator_optimizer.build(generator.trainable_variables)
        self.discriminator_optimizer.build(discriminator.trainable_variables)
        self.noise = tf.random.Generator.from_seed(seed)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")

        image_spec = tf.TensorSpec([None, *discriminator.input_shape[1:]], tf.float32)
        self._compiled_step = tf.function(self._step, input_signature=[image_spec])

    def trackables(self) -> dict:
        """Return the objects a checkpoint must hold to resume this trainer exactly."""
        return {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "generator_optimizer": self.generator_optimizer,
            "discriminator_optimizer": self.discriminator_optimizer,
            "noise": self.noise,
            "step": self.step,
        }

    def _step(self, real_images: tf.Tensor) -> dict[str, tf.Tensor]:
        batch_size = tf.shape(real_images)[0]
        z = self.noise.normal([batch_size, self.latent_dim])

        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            fake_images = self.generator(z, training=True)
            real_logits = self.discriminator(real_images, training=True)
            fake_logits = self.discriminator(fake_images, training=True)
            d_loss = discriminator_loss(real_logits, fake_logits)
            g_loss = generator_loss(fake_logits)

        d_variables = self.discriminator.trainable_variables
        g_variables = self.generator.trainable_variables
        d_gradients = discriminator_tape.gradient(d_loss, d_variables)
        g_gradients = generator_tape.gradient(g_loss, g_variables)
        self.discriminator_optimizer.apply_gradients(zip(d_gradients, d_variables))
        self.generator_optimizer.apply_gradients(zip(g_gradients, g_variables))
        self.step.assign_add(1)

        return {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
            "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits)),
        }

    def train_step(self, real_images: tf.Tensor) -> dict[str, float]:
        """Run one update of both nets on a batch of real images in [-1, 1]; return the losses as floats.

        d_real and d_fake are the discriminator's mean probability that real and generated images are real.
        """
        logs = self._compiled_step(real_images)
        return {name: float(value) for name, value in logs.items()}
