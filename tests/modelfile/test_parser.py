"""Parsing every directive, parameter type and error of Modelfiles."""

import pytest

from mullama.modelfile import (
    PARAMETER_TYPES,
    ModelfileError,
    ModelfileSpec,
    coerce_parameter,
    from_ref_kind,
    parse_modelfile,
)

HEX = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"


def parse_with_from(body: str) -> ModelfileSpec:
    return parse_modelfile("FROM base\n" + body)


def test_guide_mullamafile_example_parses_fully():
    text = f'''# Pin to specific commit
FROM hf:Qwen/Qwen2.5-7B-Instruct-GGUF@a1b2c3d
DIGEST sha256:{HEX.lower()}
PARAMETER temperature 0.7
PARAMETER num_ctx 8192
PARAMETER stop "<|im_end|>"
PARAMETER stop "<|endoftext|>"
SYSTEM """
You are a helpful assistant.
"""
GPU_LAYERS 32
FLASH_ATTENTION true
ADAPTER ./my-lora-adapter.safetensors
VISION_PROJECTOR ./mmproj.gguf
THINKING start "<think>"
THINKING end "</think>"
THINKING enabled true
TOOLFORMAT style qwen
TOOLFORMAT call_start "<tool_call>"
TOOLFORMAT call_end "</tool_call>"
CAPABILITY json true
CAPABILITY vision false
LICENSE MIT
AUTHOR "Your Name"
'''
    assert parse_modelfile(text) == ModelfileSpec(
        from_ref="hf:Qwen/Qwen2.5-7B-Instruct-GGUF@a1b2c3d",
        parameters={"temperature": 0.7, "num_ctx": 8192, "stop": ["<|im_end|>", "<|endoftext|>"]},
        system="\nYou are a helpful assistant.\n",
        adapters=["./my-lora-adapter.safetensors"],
        gpu_layers=32,
        flash_attention=True,
        vision_projector="./mmproj.gguf",
        license="MIT",
        author="Your Name",
        digest="sha256:" + HEX.lower(),
        thinking={"start": "<think>", "end": "</think>", "enabled": True},
        toolformat={"style": "qwen", "call_start": "<tool_call>", "call_end": "</tool_call>"},
        capabilities={"json": True, "vision": False},
    )


@pytest.mark.parametrize(
    ("body", "attribute", "expected"),
    [
        ("SYSTEM You are terse.", "system", "You are terse."),
        ('SYSTEM "Say \\"hi\\"\\n\\tand \\\\ go"', "system", 'Say "hi"\n\tand \\ go'),
        ('SYSTEM """one\ntwo"""', "system", "one\ntwo"),
        ('SYSTEM """\n  indented\n"""  ', "system", "\n  indented\n"),
        ("TEMPLATE {{ .Prompt }}", "template", "{{ .Prompt }}"),
        ('TEMPLATE """{{ .System }}\n{{ .Prompt }}"""', "template", "{{ .System }}\n{{ .Prompt }}"),
        ("MESSAGE user Hello there", "messages", [("user", "Hello there")]),
        (
            'MESSAGE Assistant """Hi!\nHow can I help?"""',
            "messages",
            [("assistant", "Hi!\nHow can I help?")],
        ),
        ("MESSAGE system s\nMESSAGE tool t", "messages", [("system", "s"), ("tool", "t")]),
        ("ADAPTER ./a.safetensors\nADAPTER /b.gguf", "adapters", ["./a.safetensors", "/b.gguf"]),
        ("GPU_LAYERS 35", "gpu_layers", 35),
        ("GPU_LAYERS -1", "gpu_layers", -1),
        ("FLASH_ATTENTION on", "flash_attention", True),
        ("FLASH_ATTENTION 0", "flash_attention", False),
        ('VISION_PROJECTOR "./my mmproj.gguf"', "vision_projector", "./my mmproj.gguf"),
        ("LICENSE MIT", "license", "MIT"),
        ('LICENSE MIT\nLICENSE """Apache\n2.0"""', "license", "MIT\n\nApache\n2.0"),
        ('AUTHOR "Jane Doe"', "author", "Jane Doe"),
        (f"DIGEST sha256:{HEX}", "digest", "sha256:" + HEX.lower()),
        (f"DIGEST {HEX}", "digest", "sha256:" + HEX.lower()),
        (
            'THINKING start "<think>"\nTHINKING enabled no',
            "thinking",
            {"start": "<think>", "enabled": False},
        ),
        ("THINKING END </think>", "thinking", {"end": "</think>"}),
        (
            "TOOLFORMAT style Hermes\nTOOLFORMAT result_start <tool_response>",
            "toolformat",
            {"style": "hermes", "result_start": "<tool_response>"},
        ),
        (
            "TOOLFORMAT result_end x\nTOOLFORMAT call_end y",
            "toolformat",
            {"result_end": "x", "call_end": "y"},
        ),
        (
            "CAPABILITY tools yes\nCAPABILITY thinking off",
            "capabilities",
            {"tools": True, "thinking": False},
        ),
        ("SYSTEM first\nSYSTEM second", "system", "second"),
    ],
)
def test_directive_values(body, attribute, expected):
    assert getattr(parse_with_from(body), attribute) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("PARAMETER temperature 0.7", {"temperature": 0.7}),
        ("PARAMETER temperature 1", {"temperature": 1.0}),
        ("PARAMETER top_p .9", {"top_p": 0.9}),
        ("PARAMETER top_k 40", {"top_k": 40}),
        ("PARAMETER min_p 0.05", {"min_p": 0.05}),
        ("PARAMETER typical_p 1e0", {"typical_p": 1.0}),
        ("PARAMETER num_ctx 8192", {"num_ctx": 8192}),
        ("PARAMETER num_predict -1", {"num_predict": -1}),
        ("PARAMETER num_keep 4", {"num_keep": 4}),
        ("PARAMETER repeat_penalty 1.1", {"repeat_penalty": 1.1}),
        ("PARAMETER repeat_last_n 64", {"repeat_last_n": 64}),
        ("PARAMETER presence_penalty -0.5", {"presence_penalty": -0.5}),
        ("PARAMETER frequency_penalty 0.25", {"frequency_penalty": 0.25}),
        ("PARAMETER seed 42", {"seed": 42}),
        ('PARAMETER stop "<|im_end|>"', {"stop": ["<|im_end|>"]}),
        (
            "PARAMETER stop <end_of_turn>\nPARAMETER stop User:",
            {"stop": ["<end_of_turn>", "User:"]},
        ),
        ("PARAMETER mirostat 2", {"mirostat": 2}),
        ("PARAMETER mirostat_eta 0.1", {"mirostat_eta": 0.1}),
        ("PARAMETER mirostat_tau 5.0", {"mirostat_tau": 5.0}),
        ("PARAMETER draft_max 0", {"draft_max": 0}),
        ("PARAMETER draft_min 4", {"draft_min": 4}),
        ("PARAMETER num_batch 512", {"num_batch": 512}),
        ("PARAMETER num_thread 8", {"num_thread": 8}),
        ("PARAMETER num_gpu 99", {"num_gpu": 99}),
        ("PARAMETER num_parallel 4", {"num_parallel": 4}),
    ],
)
def test_parameters_are_typed(line, expected):
    parameters = parse_with_from(line).parameters
    assert parameters == expected
    for name, value in parameters.items():
        assert type(value) is (list if name == "stop" else PARAMETER_TYPES[name])


def test_every_parameter_has_a_test_row():
    tested = {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "typical_p",
        "num_ctx",
        "num_predict",
        "num_keep",
        "repeat_penalty",
        "repeat_last_n",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "stop",
        "mirostat",
        "mirostat_eta",
        "mirostat_tau",
        "draft_max",
        "draft_min",
        "num_batch",
        "num_thread",
        "num_gpu",
        "num_parallel",
    }
    assert tested == set(PARAMETER_TYPES)


def test_syntax_details():
    text = (
        "  # indented comment\n"
        "from   llama3.2:1b   \n"
        "\n"
        "Parameter\ttemperature\t0.5\r\n"
        'system """starts here\n'
        "# not a comment inside triple quotes\n"
        'ends here"""\n'
        "# trailing comment\n"
    )
    spec = parse_modelfile(text)
    assert spec.from_ref == "llama3.2:1b"
    assert spec.parameters == {"temperature": 0.5}
    assert spec.system == "starts here\n# not a comment inside triple quotes\nends here"


def test_any_directive_accepts_triple_quotes():
    spec = parse_modelfile('FROM """./models/my model.gguf"""\nPARAMETER stop """<|im_end|>"""')
    assert spec.from_ref == "./models/my model.gguf"
    assert spec.parameters["stop"] == ["<|im_end|>"]


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (
            "FROM a\nPARAMETER temperature hot",
            2,
            23,
            'PARAMETER temperature expects a number, got "hot"',
        ),
        ("FROM a\nPARAMETER top_k 4.5", 2, 17, 'PARAMETER top_k expects an integer, got "4.5"'),
        ("FROM a\nPARAMETER mirostat 3", 2, 20, 'PARAMETER mirostat expects 0, 1 or 2, got "3"'),
        (
            "FROM a\nPARAMETER nope 1",
            2,
            11,
            'PARAMETER unknown parameter "nope"; expected one of temperature',
        ),
        ("FROM a\nPARAMETER", 2, 10, "PARAMETER expects a parameter name and a value"),
        ("FROM a\nPARAMETER seed", 2, 15, "PARAMETER seed expects a value"),
        ('FROM a\nPARAMETER stop ""', 2, 16, 'PARAMETER stop expects a non-empty string, got ""'),
        ("FROM a\nSTOP x", 2, 1, 'unknown directive "STOP"; expected one of FROM, PARAMETER'),
        ("FROM a\nSYSTEM", 2, 7, "SYSTEM expects a value"),
        ("FROM a\nSYSTEM   \n", 2, 10, "SYSTEM expects a value"),
        ('FROM a\n\nTEMPLATE """{{ .Prompt }}\n', 3, 10, 'TEMPLATE: unterminated """'),
        ('FROM a\nSYSTEM "hello', 2, 8, 'SYSTEM: unterminated quoted value (missing closing ")'),
        ('FROM a\nSYSTEM "a\nb"', 2, 8, "SYSTEM: unterminated quoted value"),
        ('FROM a\nSYSTEM "bad \\q"', 2, 13, 'SYSTEM: unknown escape "\\q"'),
        ('FROM a\nSYSTEM "x" y', 2, 12, "SYSTEM: unexpected text after the closing quote"),
        ('FROM a\nSYSTEM """x""" y', 2, 16, "SYSTEM: unexpected text after the closing quote"),
        ("PARAMETER seed 1\n", 1, 1, "missing FROM: a Modelfile needs exactly one FROM"),
        ("", 1, 1, "missing FROM"),
        ("FROM a\n\nFROM b", 3, 1, "FROM given twice (first on line 1)"),
        ('FROM ""', 1, 6, "FROM expects a model reference, got an empty string"),
        (
            "FROM a\nMESSAGE bot hi",
            2,
            9,
            'MESSAGE role must be one of system, user, assistant, tool, got "bot"',
        ),
        ("FROM a\nMESSAGE user", 2, 13, "MESSAGE user expects a value"),
        (
            "FROM a\nMESSAGE",
            2,
            8,
            "MESSAGE expects a role (system, user, assistant, tool) and content",
        ),
        (
            "FROM a\nDIGEST sha256:abc",
            2,
            8,
            'DIGEST expects sha256:<64 hex digits>, got "sha256:abc"',
        ),
        ("FROM a\nDIGEST md5:" + HEX, 2, 8, "DIGEST expects sha256:<64 hex digits>"),
        ("FROM a\nGPU_LAYERS all", 2, 12, 'GPU_LAYERS expects an integer, got "all"'),
        (
            "FROM a\nFLASH_ATTENTION maybe",
            2,
            17,
            'FLASH_ATTENTION expects true or false, got "maybe"',
        ),
        (
            "FROM a\nTHINKING begin <t>",
            2,
            10,
            'THINKING expects one of start, end, enabled, got "begin"',
        ),
        (
            "FROM a\nTHINKING enabled sure",
            2,
            18,
            'THINKING enabled expects true or false, got "sure"',
        ),
        ("FROM a\nTHINKING", 2, 9, "THINKING expects one of start, end, enabled"),
        (
            "FROM a\nTOOLFORMAT style xml",
            2,
            18,
            'TOOLFORMAT style expects one of qwen, hermes, llama3, mistral, custom, got "xml"',
        ),
        (
            "FROM a\nTOOLFORMAT start x",
            2,
            12,
            "TOOLFORMAT expects one of style, call_start, call_end",
        ),
        (
            "FROM a\nCAPABILITY audio true",
            2,
            12,
            'CAPABILITY expects one of json, tools, thinking, vision, got "audio"',
        ),
        ("FROM a\nCAPABILITY json 2", 2, 17, 'CAPABILITY json expects true or false, got "2"'),
    ],
)
def test_errors_report_line_column_and_expectation(text, line, column, message):
    with pytest.raises(ModelfileError) as caught:
        parse_modelfile(text)
    error = caught.value
    assert (error.line, error.column) == (line, column)
    assert error.message.startswith(message)
    assert str(error) == f"Modelfile line {line}, column {column}: {error.message}"


def test_error_str_format_matches_documented_example():
    with pytest.raises(ModelfileError) as caught:
        parse_modelfile("FROM x\n\nPARAMETER temperature hot")
    assert (
        str(caught.value)
        == 'Modelfile line 3, column 23: PARAMETER temperature expects a number, got "hot"'
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("temperature", "0.5", 0.5),
        ("temperature", 1, 1.0),
        ("top_k", "40", 40),
        ("top_k", 40.0, 40),
        ("seed", -1, -1),
        ("stop", "</s>", ["</s>"]),
        ("stop", ["a", "b"], ["a", "b"]),
        ("mirostat", "1", 1),
    ],
)
def test_coerce_parameter_converts(name, value, expected):
    result = coerce_parameter(name, value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("temperature", "hot", 'parameter temperature expects a number, got "hot"'),
        ("temperature", True, "parameter temperature expects a number, got True"),
        ("temperature", float("nan"), "parameter temperature expects a number"),
        ("top_k", 1.5, "parameter top_k expects an integer, got 1.5"),
        ("top_k", "x", 'parameter top_k expects an integer, got "x"'),
        ("stop", 3, "parameter stop expects a string or a list of strings, got 3"),
        ("stop", ["ok", ""], 'parameter stop expects a non-empty string, got ""'),
        ("mirostat", 5, "parameter mirostat expects 0, 1 or 2, got 5"),
        ("warmth", 1, 'unknown parameter "warmth"; expected one of temperature'),
        ("temprature", 1, 'unknown parameter "temprature"; did you mean "temperature"?'),
    ],
)
def test_coerce_parameter_rejects_with_parameter_name(name, value, message):
    with pytest.raises(ValueError) as caught:
        coerce_parameter(name, value)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("ref", "kind"),
    [
        ("hf:meta-llama/Llama-3.2-1B-Instruct-GGUF:Q4_K_M@abc123def", "hf"),
        ("hf:Qwen/Qwen2.5-7B-Instruct-GGUF@a1b2c3d", "hf"),
        ("hf:owner/repo:model-q8_0.gguf", "hf"),
        ("/models/x.gguf", "path"),
        ("./x", "path"),
        ("../up/x.bin", "path"),
        ("~/models/x", "path"),
        ("Model.GGUF", "path"),
        ("llama3.2:1b", "name"),
        ("my-assistant", "name"),
    ],
)
def test_from_ref_kind(ref, kind):
    assert from_ref_kind(ref) == kind
    assert parse_modelfile(f"FROM {ref}").from_ref == ref


def test_spec_dict_round_trip_is_json_ready():
    import json

    spec = parse_modelfile('FROM a\nMESSAGE user "hi"\nPARAMETER stop x\nTHINKING enabled true')
    data = json.loads(json.dumps(spec.to_dict()))
    assert data["messages"] == [["user", "hi"]]
    assert ModelfileSpec.from_dict(data) == spec
    assert ModelfileSpec.from_dict({"from_ref": "a"}) == ModelfileSpec(from_ref="a")
    with pytest.raises(ValueError, match="unknown ModelfileSpec field"):
        ModelfileSpec.from_dict({"from_ref": "a", "colour": "red"})
