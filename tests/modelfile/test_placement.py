"""RPC and TENSOR_SPLIT: a model's layers on llama.cpp RPC workers (parsing, serializing, the
settings of the same name and which one a model gets)."""

import pytest

from mullama.config import load_settings
from mullama.engine.rpc import Placement, placement_for
from mullama.modelfile import ModelfileError, parse_modelfile, to_modelfile
from mullama.modelfile.placement import parse_endpoints, parse_split


def test_rpc_and_tensor_split_directives_parse_and_serialize_back():
    spec = parse_modelfile("FROM base\nRPC 10.0.0.2:50052, worker-b:50053\nTENSOR_SPLIT 3,1\n")
    assert spec.rpc == ["10.0.0.2:50052", "worker-b:50053"]
    assert spec.tensor_split == [3.0, 1.0]
    text = to_modelfile(spec)
    assert "RPC 10.0.0.2:50052,worker-b:50053" in text
    assert parse_modelfile(text) == spec


def test_rpc_none_keeps_a_model_local_and_survives_serializing():
    spec = parse_modelfile("FROM base\nRPC none\n")
    assert spec.rpc == []
    assert "RPC none" in to_modelfile(spec)
    assert parse_modelfile(to_modelfile(spec)).rpc == []
    assert parse_modelfile("FROM base\n").rpc is None  # not said: the daemon's setting


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("RPC 10.0.0.2", "expects HOST:PORT"),
        ("RPC 10.0.0.2:0", "port between 1 and 65535"),
        ("RPC 10.0.0.2:http", "port between 1 and 65535"),
        ("RPC a:1,a:1", "names the worker a:1 twice"),
        ("RPC [::1]:50052", "IPv4 address or a host name"),
        ("TENSOR_SPLIT 1,x", "numbers separated by commas"),
        ("TENSOR_SPLIT 1,-1", "proportions of zero or more"),
        ("TENSOR_SPLIT 0,0", "at least one proportion above zero"),
    ],
)
def test_bad_placement_lines_are_modelfile_errors_at_their_line(line, words):
    with pytest.raises(ModelfileError) as caught:
        parse_modelfile(f"FROM base\n{line}\n")
    assert caught.value.line == 2
    assert words in caught.value.message


def test_settings_are_checked_with_the_same_words():
    with pytest.raises(ValueError, match="MULLAMA_RPC_SERVERS expects HOST:PORT"):
        load_settings(env={"MULLAMA_RPC_SERVERS": "nohost"})
    with pytest.raises(ValueError, match="MULLAMA_TENSOR_SPLIT expects numbers"):
        load_settings(env={"MULLAMA_TENSOR_SPLIT": "1;1"})
    settings = load_settings(env={"MULLAMA_RPC_SERVERS": "a:1,b:2", "MULLAMA_TENSOR_SPLIT": "1,2"})
    assert parse_endpoints(settings.rpc_servers) == ["a:1", "b:2"]
    assert parse_split(settings.tensor_split) == [1.0, 2.0]


def test_a_model_goes_where_its_modelfile_says_else_where_the_daemon_says():
    plain = parse_modelfile("FROM base\n")
    own = parse_modelfile("FROM base\nRPC c:3\nTENSOR_SPLIT 1\n")
    local = parse_modelfile("FROM base\nRPC none\n")
    assert placement_for(plain, "", "") is None
    assert placement_for(None, "", "") is None
    assert placement_for(plain, "a:1,b:2", "1,3") == Placement(("a:1", "b:2"), (1.0, 3.0))
    assert placement_for(own, "a:1,b:2", "1,3") == Placement(("c:3",), (1.0,))
    assert placement_for(local, "a:1,b:2", "") is None
