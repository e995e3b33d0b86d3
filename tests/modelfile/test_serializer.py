"""Serializing specs back to Modelfile text: canonical output and the round-trip property."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from mullama.modelfile import PARAMETER_TYPES, ModelfileSpec, parse_modelfile, to_modelfile
from mullama.modelfile.serializer import quote_value

TRICKY_TEXT = st.one_of(
    st.text(),
    st.text(alphabet='"\\\n\t\r #x ').map(lambda text: text),
    st.sampled_from(
        ['"""', 'a"""b', '"', 'ends with "', "\\n", "\r\n", " lead", "trail ", "# hash", "x\n"]
    ),
)
NON_EMPTY = st.text(min_size=1)


def _parameter_value(name):
    kind = PARAMETER_TYPES[name]
    if name == "stop":
        return st.lists(NON_EMPTY, min_size=1, max_size=3)
    if name == "mirostat":
        return st.sampled_from([0, 1, 2])
    if kind is int:
        return st.integers(-(2**40), 2**40)
    return st.floats(allow_nan=False, allow_infinity=False)


PARAMETERS = st.fixed_dictionaries(
    {}, optional={name: _parameter_value(name) for name in PARAMETER_TYPES}
)
OPTIONAL_TEXT = st.none() | TRICKY_TEXT
SPECS = st.builds(
    ModelfileSpec,
    from_ref=NON_EMPTY,
    parameters=PARAMETERS,
    system=OPTIONAL_TEXT,
    template=OPTIONAL_TEXT,
    messages=st.lists(
        st.tuples(st.sampled_from(["system", "user", "assistant", "tool"]), TRICKY_TEXT), max_size=4
    ),
    adapters=st.lists(NON_EMPTY, max_size=2),
    gpu_layers=st.none() | st.integers(-1, 999),
    flash_attention=st.none() | st.booleans(),
    vision_projector=st.none() | NON_EMPTY,
    license=OPTIONAL_TEXT,
    author=OPTIONAL_TEXT,
    digest=st.none()
    | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map("sha256:".__add__),
    thinking=st.fixed_dictionaries(
        {}, optional={"start": TRICKY_TEXT, "end": TRICKY_TEXT, "enabled": st.booleans()}
    ),
    toolformat=st.fixed_dictionaries(
        {},
        optional={
            "style": st.sampled_from(["qwen", "hermes", "llama3", "mistral", "custom"]),
            "call_start": TRICKY_TEXT,
            "call_end": TRICKY_TEXT,
            "result_start": TRICKY_TEXT,
            "result_end": TRICKY_TEXT,
        },
    ),
    capabilities=st.fixed_dictionaries(
        {}, optional={name: st.booleans() for name in ("json", "tools", "thinking", "vision")}
    ),
)


@settings(max_examples=400, deadline=None)
@given(SPECS)
def test_round_trip_of_arbitrary_specs(spec):
    text = to_modelfile(spec)
    assert parse_modelfile(text) == spec


@given(TRICKY_TEXT)
def test_quote_value_reads_back_verbatim(value):
    assert parse_modelfile(f"FROM x\nSYSTEM {quote_value(value)}").system == value


def test_canonical_text():
    spec = ModelfileSpec(
        from_ref="llama3.2:1b",
        parameters={"stop": ["<|eot_id|>", "a b"], "temperature": 0.7, "num_ctx": 8192},
        system="You are terse.",
        template="{{ .System }}\n{{ .Prompt }}",
        messages=[("user", "hi"), ("assistant", 'say "x"')],
        gpu_layers=32,
        flash_attention=True,
        thinking={"enabled": False, "start": "<think>"},
        capabilities={"tools": True},
        license="MIT",
        digest="sha256:" + "a" * 64,
    )
    assert to_modelfile(spec) == (
        "FROM llama3.2:1b\n"
        "\n"
        "PARAMETER temperature 0.7\n"
        "PARAMETER num_ctx 8192\n"
        "PARAMETER stop <|eot_id|>\n"
        'PARAMETER stop "a b"\n'
        "\n"
        'TEMPLATE """{{ .System }}\n{{ .Prompt }}"""\n'
        "\n"
        'SYSTEM "You are terse."\n'
        "\n"
        "MESSAGE user hi\n"
        'MESSAGE assistant "say \\"x\\""\n'
        "\n"
        "GPU_LAYERS 32\n"
        "FLASH_ATTENTION true\n"
        "\n"
        "THINKING start <think>\n"
        "THINKING enabled false\n"
        "\n"
        "CAPABILITY tools true\n"
        "\n"
        "LICENSE MIT\n"
        "DIGEST sha256:" + "a" * 64 + "\n"
    )


def test_quoting_choices():
    assert quote_value("plain") == "plain"
    assert quote_value("two words") == '"two words"'
    assert quote_value("") == '""'
    assert quote_value("line1\nline2") == '"""line1\nline2"""'
    assert quote_value('has """ inside\n') == '"has \\"\\"\\" inside\\n"'
    assert quote_value('ends in quote\n"') == '"ends in quote\\n\\""'
    assert quote_value("back\\slash") == "back\\slash"
    assert quote_value("cr\r\nlf") == '"cr\\r\\nlf"'


def test_float_parameters_survive_exactly():
    for value in (0.1, 1e-05, 1e300, -0.0, 123456789.125):
        spec = ModelfileSpec(from_ref="x", parameters={"temperature": value})
        parsed = parse_modelfile(to_modelfile(spec)).parameters["temperature"]
        assert parsed == value and math.copysign(1, parsed) == math.copysign(1, value)
