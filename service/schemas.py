"""Request and response bodies of the HTTP API."""

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ganforge.naming import MODEL_NAME_PATTERN
from service.registry import NAME_RULE
from service.settings import MAX_COUNT

# Seeds are limited to the range of a signed 64-bit integer, so that every client can store them.
MAX_SEED = 2**63 - 1


class GenerateRequest(BaseModel):
    """Body of POST /generate.

    Give either `seed` or `z`, or neither for a random seed. With `z`, the batch
    size is the number of vectors in it. Then `count` may be left out, and
    when given it must equal that number.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="model name: 1 to 128 characters from A-Z, a-z, 0-9, '.', '_' and '-'")
    version: int | None = Field(None, ge=1, strict=True, description="model version, or null for the latest")
    seed: int | None = Field(
        None,
        ge=0,
        le=MAX_SEED,
        strict=True,
        description="seed of numpy.random.default_rng(seed).standard_normal((count, latent_dim)) as float32",
    )
    count: int = Field(1, ge=1, le=MAX_COUNT, strict=True, description="number of images to draw from the seed")
    z: list[float] | list[list[float]] | None = Field(
        None, description=f"one latent vector, or a list of 1 to {MAX_COUNT} latent vectors, each of length latent_dim"
    )

    @field_validator("model")
    @classmethod
    def _check_model_name(cls, name: str) -> str:
        if not MODEL_NAME_PATTERN.fullmatch(name):
            raise ValueError(
                f"invalid model name {name[:140]!r}: {NAME_RULE}"
            )
        return name

    @field_validator("z", mode="before")
    @classmethod
    def _check_latent_vectors(cls, z):
        # Runs before type validation, so that a bad element gives one clear message
        # instead of one error per element and per branch of the type union.
        if z is None:
            return None
        if not isinstance(z, list) or not z:
            raise ValueError(f"z is {shorten_repr(z)}: give one latent vector of numbers, or a list of latent vectors")

        nested = isinstance(z[0], list)
        vectors = z if nested else [z]
        if len(vectors) > MAX_COUNT:
            raise ValueError(f"z has {len(vectors)} latent vectors: give 1 to {MAX_COUNT}")
        for row, vector in enumerate(vectors):
            _check_vector(vector, f"z[{row}]" if nested else "z")
        return z

    @model_validator(mode="after")
    def _check_latent_source(self):
        if self.z is None:
            return self

        if self.seed is not None:
            raise ValueError(
                f"give either seed or z, not both (seed is {self.seed}): a seed draws the latent vectors z"
            )

        if "count" in self.model_fields_set and self.count != len(self.latent_batch()):
            raise ValueError(
                f"count {self.count} does not match the {len(self.latent_batch())} latent vectors in z: "
                f"leave count out, or set it to the number of vectors"
            )
        return self

    def vector_label(self, row: int) -> str:
        """Return how messages name latent vector `row` of z: "z" for a flat z, else "z[row]"."""
        if self.z is not None and isinstance(self.z[0], list):
            return f"z[{row}]"
        return "z"

    def latent_batch(self) -> list[list[float]]:
        """Return z as a list of latent vectors, wrapping a flat z as one vector."""
        if self.z is None:
            return []
        if isinstance(self.z[0], list):
            return self.z
        return [self.z]


def shorten_repr(value, limit: int = 80) -> str:
    """Return repr(value), cut to `limit` characters, for error messages that echo request data."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_vector(vector, where: str) -> None:
    if not isinstance(vector, list) or not vector:
        raise ValueError(f"{where} is {shorten_repr(vector)}: a latent vector is a non-empty list of numbers")

    for index, value in enumerate(vector):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}[{index}] is {shorten_repr(value)}: latent vectors contain only numbers")
        try:
            finite = math.isfinite(value)
        except OverflowError:
            # An integer beyond the float range, which JSON allows.
            raise ValueError(
                f"{where}[{index}] is {shorten_repr(value)}, outside the float32 range: "
                f"use values of magnitude below 3.4e38"
            ) from None
        if not finite:
            raise ValueError(f"{where}[{index}] is {value}: latent vectors contain only finite numbers")


class ModelEntry(BaseModel):
    """One loaded model version in GET /models."""

    name: str
    version: int
    latent_dim: int
    image_shape: list[int]
    value_range: list[float]
    dataset: str | None
    training_steps: int | None
    created: str | None
    providers: list[str]
    versions: list[int] = Field(description="all loaded versions of this model name")


class FolderError(BaseModel):
    """A model folder that failed to load."""

    path: str = Field(description="the folder inside the model repository, as name/version")
    error: str


class ModelsResponse(BaseModel):
    """Body of GET /models."""

    models: list[ModelEntry]
    errors: list[FolderError]


class ReloadChanges(BaseModel):
    """Model versions, as name/version, that a reload changed."""

    loaded: list[str]
    unloaded: list[str]
    reloaded: list[str]
    failed: list[str]


class ReloadResponse(ModelsResponse):
    """Body of POST /models/reload: the models after the rescan, and what changed."""

    changes: ReloadChanges


class GenerateJsonResponse(BaseModel):
    """Body of POST /generate?format=json."""

    model: str
    version: int
    seed: int | None = Field(description="the seed that drew the latent vectors, or null when the request gave z")
    images: list[str] = Field(description="one base64 PNG per image")
    grid: str = Field(description="base64 PNG of all images in one grid, or of the single image")
    latents: list[list[float]] = Field(description="the latent vectors the images came from")
