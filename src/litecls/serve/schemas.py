"""Pydantic models of the requests and responses (they are also the OpenAPI docs at ``/docs``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from litecls.processing.region import RectF, check_rect


class ClassifyOptions(BaseModel):
    """Per-request options, from query or form fields (form fields win).

    ``roi``: region of interest as ``left,top,right,bottom`` fractions of the
    image (0-1); only that part is classified.
    """

    model_config = ConfigDict(extra="forbid")

    max_results: int = Field(5, ge=-1, description="categories per image; -1 for all")
    score_threshold: float = Field(0.0, ge=0.0, le=1.0, description="drop categories scoring under it")
    allow: list[str] | None = Field(None, description="only these category names (repeat the field)")
    deny: list[str] | None = Field(None, description="never these category names (repeat the field)")
    roi: tuple[float, float, float, float] | None = Field(
        None, description="left,top,right,bottom as fractions of the image")
    threads: int | None = Field(None, ge=1, le=64, description="interpreter threads (its own interpreter)")

    @field_validator("max_results")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("max_results must be positive, or -1 for all categories")
        return value

    @field_validator("roi", mode="before")
    @classmethod
    def _split_roi(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(","))
        return value

    @model_validator(mode="after")
    def _check(self) -> ClassifyOptions:
        if self.allow and self.deny:
            raise ValueError("allow and deny are mutually exclusive: give only one")
        if self.roi is not None:
            left, top, right, bottom = self.roi
            try:  # the library's rule (processing.region), in the service's words
                check_rect(RectF(left=left, top=top, right=right, bottom=bottom))
            except ValueError:
                raise ValueError("roi must be left,top,right,bottom with 0 <= left < right <= 1 "
                                 "and 0 <= top < bottom <= 1") from None
        return self


class CategoryOut(BaseModel):
    """One category of a result, as ``litecls classify --json`` prints it."""

    index: int
    score: float
    category_name: str | None = None
    display_name: str | None = None


class ResultRow(BaseModel):
    """One image's row: the ``litecls classify --json`` object plus ``inference_ms``, or an error."""

    file: str
    ambiguous: bool | None = None
    applied_softmax: bool | None = None
    categories: list[CategoryOut] | None = None
    inference_ms: float | None = Field(None, description="interpreter time for this image "
                                       "(a batch's time divided by its size)")
    error: str | None = None


class ClassifyResponse(BaseModel):
    """The answer to a classify call: the model used and one row per image, in order."""

    model: str
    results: list[ResultRow]


class ErrorResponse(BaseModel):
    """Every error the service answers with; ``results`` when images were read but none classified."""

    error: str
    status: int
    results: list[ResultRow] | None = None


class ModelInfo(BaseModel):
    """One model a request may name, loaded or not."""

    name: str
    loaded: bool
    default: bool = False
    source: str = Field(description="'zoo' or 'file'")
    precision: str | None = None
    file_size_bytes: int | None = Field(None, description="None when the zoo file is not built yet")
    input_size: list[int] | None = Field(None, description="[height, width], when loaded")
    input_dtype: str | None = None
    labels_count: int | None = None
    published_top1: float | None = Field(None, description="ImageNet top-1 (%) from the weights' authors")
    threads: list[int] = Field(default_factory=list, description="thread counts it is loaded with")


class ModelsResponse(BaseModel):
    """``GET /v1/models``."""

    default: str
    models: list[ModelInfo]


class Health(BaseModel):
    """``/healthz`` and ``/readyz``."""

    status: str
    loaded_models: list[str] = Field(default_factory=list)
