"""The shell lexer of `tunectl.providers.shell`, checked against the real shells.

Every rendered command runs under `/bin/sh -c` (dash here) and, when present, `bash -c`:
whatever the value, the command prints exactly what the template says, with the value's
bytes where the placeholder was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import partial
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tunectl.diags import DiagnosticError
from tunectl.engine.trials import Placeholders
from tunectl.hcl.values import Template
from tunectl.providers.bodies import COMMAND
from tunectl.providers.shell import (
    Slot,
    UnsafePlaceholder,
    command_line,
    placeholder_slots,
    quote,
)

P = ("param", "s")
SHELLS = [sh for sh in ("/bin/sh", shutil.which("bash")) if sh]
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/home/tester", "LC_ALL": "C"}
HOSTILE = [
    "x; touch PWNED",
    "$(touch PWNED)",
    "`touch PWNED`",
    "'; touch PWNED; '",
    '"; touch PWNED; "',
    "\ntouch PWNED",
    "\\",
    "$HOME",
    "*",
    "",
    "a'b\"c\\d$e`f",
    "\\'",
    "-n",
    "~root",
    "root",  # after a `~`: a user's home directory, unless quoted
    "$'\\x41'",
]
# Text without NUL (which no argument can hold) and without lone surrogates, rich in the
# pieces of shell syntax a value could use to escape its quotes.
VALUES = st.lists(
    st.one_of(
        st.sampled_from(
            ["$", "$(", "${", "$((", "`", "'", '"', "\\", "\n", ")", "}", "*", " ", ";"]
            + ["#", "~", "a", "HOME", "root", "1", "-", "=", "'\\''", "!", "&", "|", "<", ">"]
        ),
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")),
    ),
    max_size=8,
).map("".join)


def run(shell: str, command: str) -> bytes:
    proc = subprocess.run(
        [shell, "-c", command], capture_output=True, env=ENV, timeout=20, check=False
    )
    assert proc.returncode == 0, (command, proc.stderr)
    return proc.stdout


def render(parts: list, value: str) -> str:
    return command_line(Template(parts), lambda path: value)


# Each context: template parts, and what `printf '%s'` of it prints for a value v.
CONTEXTS = [
    (["printf '%s' ", P], lambda v: v),
    (["printf '%s' --x=", P], lambda v: "--x=" + v),
    (["printf '%s' 'a ", P, " b'"], lambda v: "a " + v + " b"),
    (["printf '%s' \"a ", P, ' b"'], lambda v: "a " + v + " b"),
    (["printf '%s' ", P, "'q'", P], lambda v: v + "q" + v),
    (["printf '%s' \"$(printf '%s' ", P, ')"'], lambda v: v.rstrip("\n")),
    (["printf '%s' \"$(printf '%s.' '", P, "')\""], lambda v: v + "."),
    (["printf '%s' \"$(printf '%s.' \"", P, '")"'], lambda v: v + "."),
    (["printf '%s' \"$HOME", P, '"'], lambda v: "/home/tester" + v),
    (["printf '%s' $HOME", P], lambda v: "/home/tester" + v),
    (["printf '%s' ~", P], lambda v: "~" + v),
    (["X=~", P, " && printf '%s' \"$X\""], lambda v: "~" + v),
    (["printf '%s' \\$", P], lambda v: "$" + v),  # an escaped `$` is text
    (["printf '%s' ", P, " # ", P], None),  # refused: in a comment
    (["cat <<EOF\n", P, "\nEOF"], None),  # refused: in a here-document
    ([": <<'EOF'\nx\nEOF\nprintf '%s' ", P], lambda v: v),
    (["printf '%s' \"$(cat <<'EOF'\nx)\nEOF\n)\" ", P], lambda v: "x)" + v),
]


def shell_output(parts: list, value: str, shell: str) -> bytes:
    return run(shell, render(parts, value))


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_print_exactly(shell: str, value: str, tmp_path) -> None:
    for parts, expected in CONTEXTS:
        if expected is None:
            with pytest.raises(UnsafePlaceholder):
                render(parts, value)
            continue
        command = render(parts, value)
        proc = subprocess.run(
            [shell, "-c", command], capture_output=True, env=ENV, cwd=tmp_path, timeout=20
        )
        assert proc.stdout == expected(value).encode(), (parts, command)
    assert not (tmp_path / "PWNED").exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=VALUES)
@example(value="'\"\\$`\n*?[]{}~!#&;|<>()")
def test_any_value_prints_exactly_in_every_context(value: str) -> None:
    # One shell run per shell: every context, separated by NUL bytes.
    commands = [render(parts, value) for parts, expected in CONTEXTS if expected is not None]
    joined = "; printf '\\0'; ".join(commands)
    wanted = [expected(value).encode() for _, expected in CONTEXTS if expected is not None]
    for shell in SHELLS:
        assert run(shell, joined).split(b"\0") == wanted


# -- random templates from a small shell grammar --------------------------------

MARK = "QzMARKzQ"
_safe_literal = st.sampled_from(["a", "-", "=", "x.y", "$HOME", "~", "%", ":", "9"])
_sq_literal = st.sampled_from(["a", " ", '"', "\\", "$HOME", "`x`", "$(x)", "#", "\n"])
_dq_literal = st.sampled_from(["a", " ", "'", "\\\\", '\\"', "\\$", "$HOME", "#", "\n", "~"])


def _single(draw) -> list:
    inner = draw(st.lists(st.one_of(_sq_literal, st.just(P)), max_size=4))
    return ["'", *inner, "'"]


def _double(draw, depth: int) -> list:
    pieces: list = ['"']
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["lit", "slot", "subst"] if depth < 2 else ["lit", "slot"]))
        if kind == "lit":
            pieces.append(draw(_dq_literal))
        elif kind == "slot":
            pieces.append(P)
        else:
            pieces += ["$(printf '%s' ", *_word(draw, depth + 1), " .)"]
    return [*pieces, '"']


def _word(draw, depth: int) -> list:
    pieces: list = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["lit", "slot", "single", "double"]))
        if kind == "lit":
            pieces.append(draw(_safe_literal))
        elif kind == "slot":
            pieces.append(P)
        elif kind == "single":
            pieces += _single(draw)
        else:
            pieces += _double(draw, depth)
    return pieces


@st.composite
def templates(draw) -> list:
    parts: list = ["printf '%s|'"]
    for _ in range(draw(st.integers(1, 3))):
        parts += [" ", *_word(draw, 0)]
    return parts


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=templates(), value=VALUES)
def test_random_templates_treat_the_value_as_data(parts: list, value: str) -> None:
    """Whatever the template, the value prints where a plain marker value prints."""
    slots = placeholder_slots(Template(parts).parts)
    # The grammar builds only positions that can be quoted: a refusal is a lexer bug.
    assert not [slot.refusal for slot in slots if slot.refusal]
    for shell in SHELLS:
        with_marker = run(shell, render(parts, MARK))
        with_value = run(shell, render(parts, value))
        assert with_value == with_marker.replace(MARK.encode(), value.encode()), parts


# -- positions that are refused ----------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        (["echo `echo ", P, "`"], "inside backquotes"),
        (['echo "`echo ', P, '`"'], "inside backquotes"),
        (["echo ${X:-", P, "}"], "inside a ${...} expansion"),
        (['echo "${X:-', P, '}"'], "inside a ${...} expansion"),
        (["echo $((1 + ", P, "))"], "inside arithmetic"),
        (["echo $[", P, "]"], "inside arithmetic"),
        (["((x = ", P, "))"], "inside arithmetic"),
        (["echo $'", P, "'"], "inside a $'...' string"),
        (['echo $"', P, '"'], 'inside a $"..." string'),
        (["echo hi # ", P], "in a comment"),
        (["cat <<EOF\nx ", P, "\nEOF"], "in a here-document"),
        (["cat <<'EOF'\n", P, "\nEOF"], "in a here-document"),
        (["cat <<-EOF\n\t", P, "\n\tEOF"], "in a here-document"),
        (["echo \\", P], "directly after a backslash"),
        (['echo "\\', P, '"'], "directly after a backslash"),
        (["echo $", P], "directly after a $"),
        (['echo "$', P, '"'], "directly after a $"),
        (["eval echo ", P], "arguments of eval"),
        (["eval \"echo '", P, "'\""], "arguments of eval"),
        (['eval "$(echo ', P, ')"'], "arguments of eval"),
        (["let x=", P], "arguments of let"),
        (["[[ ", P, " -eq 1 ]]"], "arguments of [[ ... ]]"),
        (["trap 'echo ", P, "' EXIT"], "arguments of trap"),
        (["declare -i x=", P], "arguments of declare"),
        (["local x=", P], "arguments of local"),
        (["read ", P], "arguments of read"),
        (["case a in a) eval echo ", P, ";; esac"], "arguments of eval"),
        ([">/dev/null eval echo ", P], "arguments of eval"),
        (["2>/dev/null eval echo ", P], "arguments of eval"),
        (["X=1 command eval echo ", P], "arguments of eval"),
        (["if true; then (eval echo ", P, "); fi"], "arguments of eval"),
        (["a[", P, "]=1"], "array subscript"),
        (["export ", P, "=1"], "variable name given to export"),
        (["x=$(case a in a) echo;; esac) ", P], "case statement inside $(...)"),
        (["cat <<", P, "\nx\n"], "delimiter is not plain text"),
        (["echo ${X:-'a'} ", P], "a quote inside a ${...} expansion"),
    ],
)
def test_refused_positions(parts: list, reason: str) -> None:
    slots = placeholder_slots(Template(parts).parts)
    assert slots[-1].refusal is not None and reason in slots[-1].refusal
    assert "list command" in slots[-1].refusal  # every refusal says how to fix it
    with pytest.raises(UnsafePlaceholder):
        render(parts, "x")


@pytest.mark.parametrize(
    ("parts", "context"),
    [
        (["python t.py ", P], "unquoted"),
        (["python t.py --x=", P], "unquoted"),
        (["python t.py '", P, "'"], "single"),
        (['python t.py "', P, '"'], "double"),
        (['python t.py "$(echo ', P, ')"'], "unquoted"),
        (["python t.py \"$(echo '", P, "')\""], "single"),
        (["echo `date` ", P], "unquoted"),  # after a closed backquote
        (["echo ${HOME} ", P], "unquoted"),
        (["echo $((1 + 2)) ", P], "unquoted"),
        (["eval true; echo ", P], "unquoted"),  # eval's arguments end at `;`
        (["[[ -n x ]] && echo ", P], "unquoted"),
        (["export X=", P], "unquoted"),
        (["cat <<EOF\nx\nEOF\necho ", P], "unquoted"),
        (["echo a#b ", P], "unquoted"),  # `#` inside a word is no comment
        (["echo \\\\", P], "unquoted"),  # an escaped backslash, then the value
        (["echo '\\'", P], "unquoted"),  # a backslash inside '...' escapes nothing
        (["echo $$", P], "unquoted"),
        (["echo >/dev/null ", P], "unquoted"),
        (["echo 2>&1 ", P], "unquoted"),
        (["(cd /) && echo ", P], "unquoted"),
    ],
)
def test_accepted_positions(parts: list, context: str) -> None:
    slots = placeholder_slots(Template(parts).parts)
    assert slots[-1].refusal is None
    assert slots[-1].context == context


def test_plain_values_stay_readable() -> None:
    unquoted = Slot(P, "unquoted")
    assert quote("0.01", unquoted) == "0.01"
    assert quote("adam", unquoted) == "adam"
    assert quote("a b", unquoted) == "'a b'"
    assert quote("it's", Slot(P, "single")) == "it'\\''s"
    assert quote('a"$`\\', Slot(P, "double")) == 'a\\"\\$\\`\\\\'


@pytest.mark.parametrize("shell", SHELLS)
def test_a_value_first_in_the_line_is_no_shell_option(shell: str, tmp_path) -> None:
    command = render([P, " touch PWNED"], "-c")
    assert command == "'-c' touch PWNED"
    ran = subprocess.run([shell, "-c", command], cwd=tmp_path, capture_output=True, env=ENV)
    assert ran.returncode == 127  # a program named `-c`, not found
    assert not (tmp_path / "PWNED").exists()


def test_nul_cannot_reach_a_command() -> None:
    with pytest.raises(ValueError, match="NUL"):
        render(["echo ", P], "a\0b")


# -- what the engine renders per trial (tunectl.engine.trials.Placeholders) ---------


def placeholders(**params: object) -> Placeholders:
    exp = SimpleNamespace(name="inj")  # Placeholders reads only the experiment's name
    return Placeholders(exp, 1, 3, dict(params), "/models/inj/3")  # type: ignore[arg-type]


def test_a_command_is_quoted_per_position() -> None:
    command = Template(["python t.py ", P, " '", P, "' \"", P, '"'])
    rendered = placeholders(s="a'b\"c").render_body(COMMAND, command)
    assert rendered == "python t.py 'a'\"'\"'b\"c' 'a'\\''b\"c' \"a'b\\\"c\""


def test_an_unsafe_command_stops_with_a_diagnostic() -> None:
    with pytest.raises(DiagnosticError) as caught:
        placeholders(s="x").render_body(COMMAND, Template(["echo `", P, "`"]))
    assert list(caught.value.diags)[0].summary == "Unsafe placeholder in a command"
    assert "Trial 3: ${param.s} sits inside backquotes" in list(caught.value.diags)[0].detail


@pytest.mark.parametrize("value", ["..", ".", "a/b", "/etc", "a\nb", "a\0b"])
def test_a_path_value_cannot_climb_out(value: str) -> None:
    for template in (Template(["runs/", P]), Template(["runs/.", P]), Template([P, "/x"])):
        with pytest.raises(DiagnosticError) as caught:
            placeholders(s=value).render_path(template)
        assert "param.s" in list(caught.value.diags)[0].detail


def test_path_values_that_stay_inside() -> None:
    values = placeholders(s="a b", e="")
    assert values.render_path(Template(["runs/", P])) == "runs/a b"
    assert values.render_path(Template(["runs/", ("param", "e"), "x"])) == "runs/x"
    assert values.render_path(Template(["runs/.", P])) == "runs/.a b"
    model_dir = Template([("trial", "model_dir"), "/work"])
    assert values.render_path(model_dir) == "/models/inj/3/work"


def test_nul_never_reaches_env_or_argv() -> None:
    values = placeholders(s="a\0b")
    for render_one in (values.render, values.render_path, partial(values.render_body, COMMAND)):
        with pytest.raises(DiagnosticError) as caught:
            render_one(Template(["x", P]))
        assert "contains a NUL byte" in list(caught.value.diags)[0].detail
