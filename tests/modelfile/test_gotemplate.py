"""The Go text/template subset, feature by feature."""

import pytest

from mullama.modelfile import Template, TemplateError, render_template
from mullama.modelfile.govalues import GoStruct, JSONMap

DATA = {
    "System": "sys",
    "Name": "Ada",
    "Empty": "",
    "Zero": 0,
    "Items": ["a", "b", "c"],
    "Map": {"b": 2, "a": 1},
    "Nested": {"Inner": {"Value": "deep"}},
    "Messages": [{"Role": "user", "Content": "hi"}, {"Role": "assistant", "Content": "yo"}],
    "None": None,
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # fields and variables
        ("{{ .Name }}", "Ada"),
        ("{{ .Nested.Inner.Value }}", "deep"),
        ("{{ $.System }}", "sys"),
        ("{{ .Missing }}|{{ .Missing.Deeper }}|{{ .None }}", "<no value>|<no value>|<no value>"),
        ("{{ $x := .Name }}[{{ $x }}]", "[Ada]"),
        ("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", "2"),
        ("{{ with .Nested }}{{ $.Name }}/{{ .Inner.Value }}{{ end }}", "Ada/deep"),
        ("{{ (index .Messages 1).Content }}", "yo"),
        # literals
        (
            '{{ "q\\"\\t" }}|{{ `raw\\n` }}|{{ 42 }}|{{ -3 }}|{{ 1.5 }}|{{ true }}|{{ 0x1F }}|{{ \'a\' }}',
            'q"\t|raw\\n|42|-3|1.5|true|31|97',
        ),
        ("{{ 1e6 }} {{ 100000.0 }} {{ 0.00001 }}", "1e+06 100000 1e-05"),
        # trim markers
        ("a  \n {{- .Name -}} \n\t b", "aAdab"),
        ("a {{- /* comment */ -}} b", "ab"),
        ("a {{/* comment */}} b", "a  b"),
        ("x{{- 3 }}", "x3"),
        ("{{-3}}", "-3"),
        ("1 {{ 2 -}}\n\n 3", "1 23"),
        # if / else if / else
        ("{{ if .Name }}yes{{ end }}", "yes"),
        ("{{ if .Empty }}a{{ else if .Zero }}b{{ else if .Items }}c{{ else }}d{{ end }}", "c"),
        ("{{ if .None }}a{{ else }}b{{ end }}", "b"),
        ("{{ if $v := .Name }}{{ $v }}{{ end }}", "Ada"),
        ("{{ with .Empty }}x{{ else }}empty{{ end }}", "empty"),
        ("{{ with .Empty }}x{{ else with .Name }}{{ . }}{{ end }}", "Ada"),
        # range
        ("{{ range .Items }}<{{ . }}>{{ end }}", "<a><b><c>"),
        (
            "{{ range $i, $m := .Messages }}{{ $i }}:{{ $m.Role }}={{ .Content }};{{ end }}",
            "0:user=hi;1:assistant=yo;",
        ),
        ("{{ range $v := .Items }}{{ $v }}{{ end }}", "abc"),
        ("{{ range $k, $v := .Map }}{{ $k }}={{ $v }},{{ end }}", "a=1,b=2,"),
        ("{{ range .Nothing }}x{{ else }}none{{ end }}", "none"),
        ('{{ range .Items }}{{ if eq . "b" }}{{ continue }}{{ end }}{{ . }}{{ end }}', "ac"),
        ('{{ range .Items }}{{ if eq . "b" }}{{ break }}{{ end }}{{ . }}{{ end }}', "a"),
        ("{{ range 3 }}{{ . }}{{ end }}", "012"),
        (
            "{{ range $i, $_ := .Items }}{{ $last := eq (len (slice $.Items $i)) 1 }}{{ if $last }}last={{ . }}{{ end }}{{ end }}",
            "last=c",
        ),
        # functions
        (
            '{{ eq .Name "Ada" }} {{ eq 1 2 3 1 }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt "b" "a" }} {{ ge 1 2 }}',
            "true true true true true true false",
        ),
        (
            '{{ and 1 0 2 }}|{{ and 1 2 }}|{{ or 0 "" }}|{{ or 0 .Name }}|{{ not .Empty }}',
            "0|2||Ada|true",
        ),
        ('{{ len .Items }} {{ len .Map }} {{ len "héllo" }}', "3 2 6"),
        (
            '{{ index .Items 2 }} {{ index .Map "b" }} {{ index .Nested "Inner" "Value" }}',
            "c 2 deep",
        ),
        (
            '{{ slice .Items 1 }} {{ slice .Items 0 2 }} {{ slice .Items }} {{ slice "hello" 1 3 }}',
            "[b c] [a b] [a b c] el",
        ),
        (
            '{{ json .Map }} {{ json .Items }} {{ json "<a&b>" }} {{ json .None }} {{ json 2.0 }}',
            '{"a":1,"b":2} ["a","b","c"] "\\u003ca\\u0026b\\u003e" null 2',
        ),
        ('{{ print "a" 1 2 "b" }}|{{ println 1 "x" }}|{{ print .None }}', "a1 2b|1 x\n|<nil>"),
        (
            '{{ printf "%s-%d-%v-%q-%5.2f-%t-%%" "s" 7 .Items "q" 3.14159 true }}',
            's-7-[a b c]-"q"- 3.14-true-%',
        ),
        ('{{ printf "%d" }}|{{ printf "x" 1 }}', "%!d(MISSING)|x%!(EXTRA int=1)"),
        # pipelines and parentheses
        ('{{ .Name | printf "%s!" }}', "Ada!"),
        ('{{ .Items | len | printf "%d items" }}', "3 items"),
        ("{{ not (eq (len .Items) 0) }}", "true"),
        # printing composites
        ("{{ .Map }} {{ .Items }} {{ .Zero }} {{ .Empty }}|", "map[a:1 b:2] [a b c] 0 |"),
    ],
)
def test_features(template, expected):
    assert render_template(template, DATA) == expected


def test_trim_markers_match_go_on_multiline_template():
    template = "{{- range .Items }}\n  {{- . }}\n{{- end }}\n"
    assert render_template(template, DATA) == "abc\n"


def test_struct_and_stringer_values():
    function = GoStruct([("Name", "name", "f"), ("Extra", "extra,omitempty", "")], stringer=True)
    plain = GoStruct([("A", "a", 1), ("B", "b", "x")])
    data = {"F": function, "P": plain, "Args": JSONMap({"z": 1, "a": "<"})}
    assert render_template("{{ .F }}|{{ .F.Name }}|{{ .P }}|{{ json .P }}", data) == (
        '{"name":"f"}|f|{1 x}|{"a":1,"b":"x"}'
    )
    assert render_template("{{ .Args }}", data) == '{"a":"\\u003c","z":1}'
    with pytest.raises(TemplateError, match="can't evaluate field Nope in type struct"):
        render_template("{{ .P.Nope }}", data)


def test_variables_are_scoped_to_their_block():
    with pytest.raises(TemplateError, match="undefined variable: \\$x"):
        render_template("{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}", {})


def test_template_is_reusable_and_reports_fields():
    template = Template("{{ range .Messages }}{{ .Content }}{{ end }}{{ $.Tools }}")
    assert template.render({"Messages": [{"Content": "a"}], "Tools": []}) == "a[]"
    assert template.render({"Messages": [], "Tools": [1]}) == "[1]"
    assert template.references_field("Messages") and template.references_field("Tools")
    assert not template.references_field("Response")


def test_truncated_after_field_mirrors_ollama():
    template = Template("A{{ if .X }}B{{ .Response }}C{{ end }}D{{ .Response }}E")
    cut = template.truncated_after_field("Response")
    assert cut.render({"X": True, "Response": "r"}) == "ABr"
    assert cut.render({"X": False, "Response": "r"}) == "A"
    assert template.render({"X": True, "Response": "r"}) == "ABrCDrE"


@pytest.mark.parametrize(
    ("template", "line", "message"),
    [
        ("{{ .Name", 1, "unclosed action"),
        ("a\n{{ if .X }}", 2, "unexpected EOF: {{if}} has no matching {{end}}"),
        ("{{ end }}", 1, "unexpected {{end}}"),
        ("x\n\n{{ else }}", 3, "unexpected {{else}}"),
        (
            "{{ if .A }}{{ else }}{{ else }}{{ end }}",
            1,
            "expected {{end}} to close {{if}} after {{else}}",
        ),
        ("{{ nofunc 1 }}", 1, 'function "nofunc" not defined'),
        ("{{\n$y }}", 2, "undefined variable: $y"),
        ("{{ break }}", 1, "{{break}} outside {{range}}"),
        ('{{ define "x" }}{{ end }}', 1, "{{define}} is not supported"),
        ('{{ "abc }}', 1, "unterminated quoted string"),
        ("{{ /* x */ }}", 1, "unrecognized character in action: '/'"),
        ("{{/* x }}", 1, "unclosed comment"),
        ("{{ (1 }}", 1, "unclosed left paren"),
        ("{{ 1) }}", 1, "unexpected right paren"),
        ("{{ if }}{{ end }}", 1, "missing value for if"),
        ("{{ .A | }}", 1, "missing command after |"),
        ('{{ .A.B"x" }}', 1, "unexpected string 'x' in operand"),
        ("{{ # }}", 1, "unrecognized character in action: '#'"),
        ('{{ "\\q" }}', 1, "unknown escape sequence"),
    ],
)
def test_parse_errors_carry_line(template, line, message):
    with pytest.raises(TemplateError) as caught:
        Template(template)
    assert caught.value.line == line
    assert message in caught.value.message
    assert str(caught.value).startswith(f"template line {line}: ")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ index .Items 5 }}", "error calling index: index out of range: 5"),
        ("{{ eq .Name 1 }}", "error calling eq: incompatible types for comparison"),
        ("{{ lt .Items .Items }}", "invalid type for comparison"),
        ("{{ len 3 }}", "error calling len: len of type int"),
        ("{{ .Name.First }}", "can't evaluate field First in type string"),
        ("{{ len 1 2 }}", "wrong number of args for len"),
        ("{{ .Name 1 }}", "can't give argument to non-function .Name"),
        ("{{ nil }}", "nil is not a command"),
        ("{{ range .Name }}{{ end }}", "range can't iterate over Ada"),
        ("{{ and 1 }}", "wrong number of args for and"),
    ],
)
def test_execution_errors(template, message):
    with pytest.raises(TemplateError) as caught:
        render_template(template, DATA)
    assert message in caught.value.message
