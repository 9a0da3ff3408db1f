"""Names are identifiers (SPEC section 6, "Names"), in the configuration and on the command line.

Every label a user chooses (experiment, param, task, output, variable, locals key) and every
address typed on the command line (--target, --replace, show, state show/rm, logs) is fuzzed
through the real CLI. The oracle below is written independently of tunectl/names.py: ASCII
letters, digits, `_` and `-`, starting with a letter, 1 to 64 characters.
"""

from __future__ import annotations

import string
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli, write
from tunectl.addrs import Address, parse_address
from tunectl.diags import DiagnosticError
from tunectl.names import name_problem

LETTERS = string.ascii_letters
NAME_CHARS = LETTERS + string.digits + "_-"


def is_name(text: str) -> bool:
    return 1 <= len(text) <= 64 and text[0] in LETTERS and all(c in NAME_CHARS for c in text)


# Every position a user-chosen name takes, with its kind as the diagnostic says it.
KINDS = {
    "variable": "variable",
    "local": "local value",
    "experiment": "experiment",
    "param": "parameter",
    "task": "task",
    "output": "output",
}

TEMPLATE = """\
variable "{variable}" {{
  type    = number
  default = 3
}}
locals {{
  {local} = 2
}}

experiment "{experiment}" {{
  algorithm "random" {{
    seed = 1
  }}
  objective {{
    metric    = "m"
    direction = "maximize"
  }}
  max_trials = 3
  param "{param}" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    provider = "local"
    task "{task}" {{
      command = "echo m=1"
    }}
  }}
}}
output "{output}" {{
  value = 1
}}
"""

# The line of main.hcl that declares each position's name.
LINES = {
    p: next(i for i, line in enumerate(TEMPLATE.splitlines(), 1) if "{" + p + "}" in line)
    for p in KINDS
}
VALID = {p: f"n{i}" for i, p in enumerate(KINDS)}


def hcl_string(text: str) -> str:
    """The body of an HCL quoted string whose value is exactly `text`."""
    out = []
    for char in text:
        if char in '\\"':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif not char.isprintable() or unicodedata.category(char) in ("Zl", "Zp"):
            code = ord(char)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    # ${ and %{ open templates; doubled, they are literal.
    return "".join(out).replace("${", "$${").replace("%{", "%%{")


def config(names: dict[str, str]) -> str:
    values = {p: hcl_string(n) if p != "local" else n for p, n in names.items()}
    return TEMPLATE.format(**values)


def validate(names: dict[str, str]):
    with tempfile.TemporaryDirectory() as tmp:
        directory = write(Path(tmp), {"main.hcl": config(names)})
        return run_cli(directory, "validate")


def assert_no_crash(result) -> None:
    assert "Traceback" not in result.text, result.text
    assert "internal error" not in result.text, result.text


def assert_verdicts(names: dict[str, str], result) -> None:
    """Exit 0 when every name is valid; otherwise exit 1 and one located error per bad name."""
    assert_no_crash(result)
    bad = {p for p, n in names.items() if not is_name(n)}
    if not bad:
        assert result.code == 0, result.text
        assert "Success! The configuration is valid." in result.out
        return
    assert result.code == 1, result.text
    for position, kind in KINDS.items():
        line = LINES[position]
        summary = f"Error: Invalid {kind} name"
        if position in bad:
            assert summary in result.err, (position, result.err)
            block = result.err.split(summary, 1)[1].split("\nError: ", 1)[0]
            assert f"on main.hcl line {line}" in block, block
            # The rule itself, so that the user knows what to write instead.
            assert "starts with a letter" in block and "at most 64 characters" in block
        else:
            assert summary not in result.err, (position, result.err)


names = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,63}", fullmatch=True)
any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
tricky = st.sampled_from(
    ["", "$(id)", "../a b", "a" * 65, "é", "a.b", "1a", "_a", "-a", "a b", "a\x1b[31m", "a\nb"]
)
label = st.one_of(names, any_text, tricky)
# A locals key is an HCL identifier: anything else is a syntax error, not a name.
identifier = st.one_of(names, st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,70}", fullmatch=True))

# Each example runs the CLI (about a second): no shrinking, whose hundreds of runs would
# take minutes; a failure shows the example as drawn.
SLOW = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


@SLOW
@given(
    st.fixed_dictionaries(
        {p: (identifier if p == "local" else label) for p in KINDS},
    )
)
def test_every_label_position_follows_the_name_rule(drawn: dict[str, str]) -> None:
    assert_verdicts(drawn, validate(drawn))


@settings(SLOW, max_examples=12)
@given(st.fixed_dictionaries({p: names for p in KINDS}))
def test_valid_names_validate(drawn: dict[str, str]) -> None:
    assert_verdicts(drawn, validate(drawn))


@pytest.mark.parametrize(
    "name, valid",
    [
        ("a" * 64, True),
        ("a" * 65, False),
        ("A-b_9", True),
        ("a-b", True),
        ("a_b", True),
        ("", False),
        ("é", False),
        ("naïve", False),
        ("$(id)", False),
        ("../a b", False),
        ("x" * 5000, False),
    ],
)
def test_edges_in_every_position(name: str, valid: bool) -> None:
    drawn = {p: name for p in KINDS if p != "local"}
    drawn["local"] = name if valid or name[:1] == "x" else "_x"
    result = validate(drawn)
    assert_verdicts(drawn, result)
    if name == "x" * 5000:
        # The message quotes a bounded prefix, not 5,000 characters per error.
        assert "is 5000 characters long" in result.err
        assert max(len(line) for line in result.err.splitlines() if "long" in line) < 400


def test_a_b_and_a_dash_b_are_distinct_experiments(tmp_path: Path) -> None:
    text = config(VALID)
    text = text.replace(f'experiment "{VALID["experiment"]}"', 'experiment "a-b"')
    experiment = text[text.index('experiment "a-b"') : text.index('output "')]
    text += "\n" + experiment.replace('experiment "a-b"', 'experiment "a_b"')
    result = run_cli(write(tmp_path, {"main.hcl": text}), "validate")
    assert result.code == 0, result.text


# --- the rule itself, in-process: many more cases than the CLI can afford ---


@settings(max_examples=2000, deadline=None)
@given(st.one_of(names, any_text, tricky))
def test_name_problem_matches_the_rule(text: str) -> None:
    problem = name_problem(text)
    assert (problem is None) == is_name(text), (text, problem)


# --- addresses on the command line ---


def is_address(text: str) -> bool:
    prefix = "experiment."
    if not text.startswith(prefix):
        return False
    name, dot, rest = text[len(prefix) :].partition(".")
    if not is_name(name):
        return False
    if not dot:
        return True
    if not (rest.startswith("trial[") and rest.endswith("]")):
        return False
    digits = rest[len("trial[") : -1]
    return (
        digits != ""
        and all(c in string.digits for c in digits)
        and (digits == "0" or digits[0] != "0")
        and int(digits) < 2**63
    )


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        any_text,
        st.builds(lambda n: f"experiment.{n}", st.one_of(names, any_text, tricky)),
        st.builds(
            lambda n, i: f"experiment.{n}.trial[{i}]",
            st.one_of(names, tricky),
            st.one_of(st.integers(-(2**70), 2**70), any_text, st.just("007")),
        ),
    )
)
def test_parse_address_accepts_exactly_the_addresses(text: str) -> None:
    try:
        address = parse_address(text)
    except DiagnosticError as exc:
        assert not is_address(text), text
        assert [d.summary for d in exc.diags] == ["Invalid address"]
        return
    assert is_address(text), text
    assert str(address) == text
    assert address == Address(address.experiment, address.trial)


STATE_CONFIG = {"main.hcl": config(VALID)}


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = write(tmp_path_factory.mktemp("addresses"), STATE_CONFIG)
    result = run_cli(directory, "init")
    assert result.code == 0, result.text
    return directory


def address_commands(text: str) -> list[tuple[list[str], tuple[str, ...]]]:
    """Each command that takes an address, and what it may say once the address parsed."""
    planned = ("Plan:", "no experiment with that address")
    commands = [
        (["show", "--", text], ("No such experiment",)),
        (["state", "show", "--", text], ("No such address",)),
        (["logs", "--", text], ("No such experiment",)),
    ]
    if not is_address(text) or "trial[" not in text:
        commands += [
            (["state", "rm", "--", text], ("No such address",)),
            (["plan", f"--target={text}"], planned),
            (["plan", f"--replace={text}"], planned),
        ]
    return commands


address_text = st.one_of(
    any_text.filter(lambda t: "\x00" not in t),
    st.builds(lambda n: f"experiment.{n}", st.one_of(names, tricky)),
    st.builds(
        lambda n, i: f"experiment.{n}.trial[{i}]",
        st.one_of(names, tricky),
        st.one_of(st.integers(-(2**70), 2**70), st.sampled_from(["", "1e3", "007", " 1"])),
    ),
)


@settings(SLOW, max_examples=12)
@given(address_text)
def test_addresses_on_the_command_line(initialised: Path, text: str) -> None:
    for args, after_parse in address_commands(text):
        result = run_cli(initialised, *args)
        assert_no_crash(result)
        if is_address(text):
            assert "Invalid" not in result.err, (args, result.text)
            assert any(m in result.text for m in after_parse), (args, result.text)
        else:
            assert result.code == 1, (args, result.text)
            assert result.err.lstrip().startswith("Error: "), (args, result.text)
            assert "Invalid" in result.err or "No such plan file or address" in result.err, (
                args,
                result.text,
            )


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "experiment.e.trial[99999999999999999999]"], "out of range"),
        (["show", "experiment.e.trial[-1]"], "is negative"),
        (["state", "show", "experiment.e.trial[9223372036854775808]"], "out of range"),
        (["logs", "experiment.e", "--trial", "-1"], "is negative"),
        (["logs", "experiment.e", "--trial", "99999999999999999999"], "out of range"),
        (["show", "experiment.$(id)"], 'it starts with "$"'),
        (["show", "experiment." + "a" * 65], "65 characters long"),
        (["show", "experiment.é"], "U+00E9"),
        (["show", "mnist"], "Did you mean experiment.mnist?"),
        (["show", "experiment.a.b"], "only .trial[N] may follow"),
        (["state", "mv", "experiment.a.trial[0]", "experiment.b"], "Use experiment.a."),
        (["plan", "--target", "experiment.a.trial[1]"], "Use experiment.a."),
        (["plan", "--replace", "../a b"], "--replace"),
        (["output", "../a b"], "Invalid output name"),
    ],
)
def test_address_edges(initialised: Path, args: list[str], message: str) -> None:
    result = run_cli(initialised, *args)
    assert_no_crash(result)
    assert result.code == 1, result.text
    assert result.err.lstrip().startswith("Error: "), result.text
    assert message in result.err, result.text


def test_trial_number_limits_in_process() -> None:
    assert parse_address("experiment.e.trial[0]") == Address("e", 0)
    top = 2**63 - 1
    assert parse_address(f"experiment.e.trial[{top}]") == Address("e", top)
    # Thousands of digits: refused by length, never handed to int() (which would refuse
    # more than 4300 digits with a ValueError).
    with pytest.raises(DiagnosticError):
        parse_address("experiment.e.trial[" + "9" * 10000 + "]")
    with pytest.raises(DiagnosticError):
        parse_address("experiment.e.trial[" + "0" * 10000 + "]")
