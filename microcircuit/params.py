"""The base of every parameter model, below the spec layer and the registries (pydantic only, torch-free).

The spec's sections (:mod:`microcircuit.spec.schema`) and the parameters that registered plasticity
rules, dynamics and tasks declare next to their code (``Params``, read by the schema) are all
:class:`Strict` models.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

NonNegFloat = Annotated[float, Field(ge=0.0)]
NonNegInt = Annotated[int, Field(ge=0)]


class Strict(BaseModel):
    """Base: unknown keys are errors, numbers are not silently made from strings."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)
