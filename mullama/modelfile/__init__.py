"""Modelfile / Mullamafile: parsing, serialization, Go TEMPLATE rendering and chat prompts."""

from .chat import render_prompt
from .gotemplate import Template, TemplateError, render_template
from .parameters import PARAMETER_TYPES, coerce_parameter
from .parser import parse_modelfile
from .refs import from_ref_kind
from .serializer import to_modelfile
from .spec import ModelfileError, ModelfileSpec

__all__ = [
    "PARAMETER_TYPES",
    "ModelfileError",
    "ModelfileSpec",
    "Template",
    "TemplateError",
    "coerce_parameter",
    "from_ref_kind",
    "parse_modelfile",
    "render_prompt",
    "render_template",
    "to_modelfile",
]
