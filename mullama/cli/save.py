"""`/save NAME` of the interactive session: the Modelfile of a model that starts where the
session is (as Ollama's /save): the current model's Modelfile, the session's system message and
parameters over its own, and the conversation after its MESSAGE lines."""

from __future__ import annotations

from mullama.engine.api import Message


def session_modelfile(
    modelfile: str, system: str | None, parameters: dict[str, object], messages: list[Message]
) -> str:
    from mullama.modelfile import parse_modelfile, to_modelfile

    spec = parse_modelfile(modelfile)
    if system:
        spec.system = system
    spec.parameters.update(parameters)
    spec.messages += [(m.role, m.content) for m in messages]
    return to_modelfile(spec)
