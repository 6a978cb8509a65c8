"""DCGAN generator and discriminator (Radford et al., 2016) sized for small square images."""

import keras
from keras import layers

# DCGAN's recommended initialisation: zero-mean normal weights with standard deviation 0.02.
_INIT = keras.initializers.RandomNormal(mean=0.0, stddev=0.02)
_LEAKY_SLOPE = 0.2


def build_generator(latent_dim: int, image_size: int = 28, channels: int = 1, width: int = 64) -> keras.Model:
    """Build the generator: latent vector z [batch, latent_dim] to image [batch, size, size, channels] in [-1, 1].

    A dense layer makes a (size/4)x(size/4) map with 2*width filters, then two stride-2 transposed
    convolutions upsample it to full size.
    """
    base = image_size // 4
    z = keras.Input(shape=(latent_dim,), name="z")

    x = layers.Dense(base * base * width * 2, use_bias=False, kernel_initializer=_INIT)(z)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU(negative_slope=_LEAKY_SLOPE)(x)
    x = layers.Reshape((base, base, width * 2))(x)

    x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False, kernel_initializer=_INIT)(x)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU(negative_slope=_LEAKY_SLOPE)(x)

    image = layers.Conv2DTranspose(
        channels, 4, strides=2, padding="same", activation="tanh", kernel_initializer=_INIT, name="image"
    )(x)
    return keras.Model(z, image, name="generator")


def build_discriminator(image_size: int = 28, channels: int = 1, width: int = 64) -> keras.Model:
    """Build the discriminator: image [batch, size, size, channels] to one real-vs-fake logit per image."""
    image = keras.Input(shape=(image_size, image_size, channels), name="image")

    x = layers.Conv2D(width, 4, strides=2, padding="same", kernel_initializer=_INIT)(image)
    x = layers.LeakyReLU(negative_slope=_LEAKY_SLOPE)(x)

    x = layers.Conv2D(width * 2, 4, strides=2, padding="same", use_bias=False, kernel_initializer=_INIT)(x)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU(negative_slope=_LEAKY_SLOPE)(x)

    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    logit = layers.Dense(1, kernel_initializer=_INIT, name="logit")(x)
    return keras.Model(image, logit, name="discriminator")
