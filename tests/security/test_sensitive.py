"""Sensitive values stay sensitive (issue 9 item 2, SPEC 6 "Sensitivity flows").

A `sensitive` variable's value (a random token) flows through locals, a string template,
functions (`upper`, `format`, `join`), an env map, a command and an output. The trial really
gets it (it writes a hash of what it received to its model dir); no byte of anything
tunectl writes or prints holds it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import pytest

from tests.conftest import Result, cli_env, run_cli, write

# The trial proves what it received without revealing it: sha256 of its argv[1] and of
# the env variable AUTH, in its model dir.
TRIAL = """\
import hashlib, os, sys
out = os.environ["TUNECTL_MODEL_DIR"]
with open(os.path.join(out, "received.json"), "w") as f:
    f.write('{"arg": "%s", "auth": "%s"}' % (
        hashlib.sha256(sys.argv[1].encode()).hexdigest(),
        hashlib.sha256(os.environ.get("AUTH", "").encode()).hexdigest(),
    ))
print("acc=0.5")
"""

MAIN = """\
variable "token" {
  type      = string
  sensitive = true
}

variable "label" {
  type    = string
  default = "plain"
}

locals {
  bearer = "Bearer ${var.token}"
  shout  = upper(var.token)
  joined = join("-", [var.token, "tail"])
}

experiment "demo" {
  description = format("%s run", var.label)
  algorithm "random" {
    seed = 1
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials     = 1
  max_concurrent = 1
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  trial {
    command = "python3 trial.py ${local.joined} ${param.x}"
    workdir = "."
    env = {
      AUTH  = local.bearer
      PLAIN = "visible"
    }
  }
}

output "shouted" {
  value     = format("[%s]", local.shout)
  sensitive = true
}

output "best" {
  value = experiment.demo.best.value
}
"""


def _token() -> str:
    # Recognisable, random, and different from its upper-case form (local.shout).
    return "tok" + secrets.token_hex(12)


def _forms(token: str) -> list[bytes]:
    """Every form of the secret the configuration computes."""
    return [
        t.encode()
        for t in (token, token.upper(), f"Bearer {token}", f"{token}-tail", f"[{token.upper()}]")
    ]


def _assert_absent(token: str, where: str, data: bytes | str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    for form in _forms(token):
        assert form not in raw, f"the secret ({form!r}) leaked into {where}"
    # Also the JSON-escaped and lower-case spellings, in case a writer re-encodes.
    assert token.encode() not in raw.lower(), f"the secret leaked into {where}"


def _walk(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _run(directory: Path, *args: str, env: dict[str, str], ok: bool = True) -> Result:
    result = run_cli(directory, *args, env=env)
    if ok:
        assert result.code == 0, result.text
    return result


def test_secret_reaches_the_trial_and_nothing_tunectl_writes(tmp_path: Path) -> None:
    token = _token()
    cfg = write(tmp_path / "cfg", {"main.hcl": MAIN, "trial.py": TRIAL})
    cache = tmp_path / "cache"
    env = cli_env(TUNECTL_VAR_token=token, TUNECTL_CACHE_DIR=str(cache))
    printed: list[tuple[str, str]] = []

    def run(*args: str) -> Result:
        result = _run(cfg, *args, env=env)
        printed.append((" ".join(args), result.text))
        return result

    assert "Success!" in run("validate").out
    human = run("plan", "--out", "saved.plan").out
    assert "(sensitive value)" in human
    assert '"visible"' in human  # the env map's other element is still shown
    plan_json = json.loads(run("plan", "--json").out)
    after = plan_json["changes"][0]["after"]
    assert after["trial"]["task"]["main"]["command"] == "(sensitive value)"
    assert after["trial"]["task"]["main"]["env"] == {
        "AUTH": "(sensitive value)",
        "PLAIN": "visible",
    }
    assert after["description"] == "plain run"  # not derived from the secret: shown
    assert "(sensitive value)" in run("plan", "--markdown").out
    run("show", "saved.plan")
    run("show", "saved.plan", "--json")
    applied = run("apply", "saved.plan").out
    assert "shouted = <sensitive>" in applied
    run("show")
    run("show", "--json")
    run("show", "experiment.demo")
    run("show", "experiment.demo", "--json")
    run("show", "experiment.demo.trial[0]")
    run("state", "show", "experiment.demo")
    outputs = json.loads(run("output", "--json").out)
    assert outputs["shouted"] == {"sensitive": True, "value": None}
    assert run("output").out.count("<sensitive>") == 1
    run("logs", "experiment.demo")
    run("plan")

    # The trial got the real values, through its command and its env.
    received = json.loads(next(cfg.rglob("received.json")).read_text())
    assert received["arg"] == hashlib.sha256(f"{token}-tail".encode()).hexdigest()
    assert received["auth"] == hashlib.sha256(f"Bearer {token}".encode()).hexdigest()

    # No byte of any file under the configuration directory (state, backups, models, the
    # plan file, task spec files, logs) or the parse cache holds it; nor anything printed.
    files = _walk(cfg) + _walk(cache)
    assert any(p.name == "spec.json" for p in files)
    assert any(p.name == "saved.plan" for p in files)
    for path in files:
        _assert_absent(token, str(path.relative_to(tmp_path)), path.read_bytes())
    for command, text in printed:
        _assert_absent(token, f"the output of tunectl {command}", text)

    # Asked for by name, a sensitive output is evaluated again and shown (as Terraform's
    # `output NAME`): that is how a user gets it, on purpose.
    assert run("output", "shouted", "--raw").out.strip() == f"[{token.upper()}]"


ROTATE = """\
variable "token" {
  type      = string
  sensitive = true
}

experiment "demo" {
  algorithm "random" {
    seed = 1
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials = 1
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  trial {
    command = "python3 trial.py x ${param.x}"
    workdir = "."
    env = {
      AUTH = "Bearer ${var.token}"
    }
  }
}
"""


def test_changed_secret_is_an_update_shown_as_sensitive(tmp_path: Path) -> None:
    old, new = _token(), _token()
    cfg = write(tmp_path / "cfg", {"main.hcl": ROTATE, "trial.py": TRIAL})
    _run(cfg, "apply", "--auto-approve", "--var", f"token={old}", env=cli_env())
    same = _run(cfg, "plan", "--var", f"token={old}", env=cli_env()).out
    assert "No changes." in same, same

    result = _run(
        cfg, "plan", "--detailed-exitcode", "--var", f"token={new}", env=cli_env(), ok=False
    )
    assert result.code == 2, result.text
    assert "experiment.demo will be updated in-place" in result.out, result.out
    assert "~ trial.task.main.env = { AUTH = (sensitive value) }" in result.out, result.out
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in result.out
    for token in (old, new):
        _assert_absent(token, "plan", result.text)

    data = json.loads(_run(cfg, "plan", "--json", "--var", f"token={new}", env=cli_env()).out)
    change = data["changes"][0]
    assert change["action"] == "update"
    attr = change["attributes"][0]
    assert attr["sensitive"] is True
    assert attr["before"] == attr["after"] == {"AUTH": "(sensitive value)"}


def test_secret_in_command_forces_replacement_without_showing_it(tmp_path: Path) -> None:
    old, new = _token(), _token()
    hcl = ROTATE.replace('"python3 trial.py x ${param.x}"', '"python3 trial.py ${var.token}"')
    cfg = write(tmp_path / "cfg", {"main.hcl": hcl, "trial.py": TRIAL})
    _run(cfg, "apply", "--auto-approve", env=cli_env(TUNECTL_VAR_token=old))
    out = _run(cfg, "plan", env=cli_env(TUNECTL_VAR_token=new)).out
    assert "must be replaced" in out
    assert "~ trial.task.main.command = (sensitive value) # forces replacement" in out, out
    for token in (old, new):
        _assert_absent(token, "plan", out)


def test_saved_plan_is_stale_when_the_secret_changed(tmp_path: Path) -> None:
    old, new = _token(), _token()
    cfg = write(tmp_path / "cfg", {"main.hcl": ROTATE, "trial.py": TRIAL})
    _run(cfg, "plan", "--out", "p.plan", env=cli_env(TUNECTL_VAR_token=old))
    _assert_absent(old, "the plan file", (cfg / "p.plan").read_bytes())

    stale = _run(cfg, "apply", "p.plan", env=cli_env(TUNECTL_VAR_token=new), ok=False)
    assert stale.code == 1
    assert "Error: Saved plan is stale" in stale.err, stale.text
    missing = _run(cfg, "apply", "p.plan", env=cli_env(), ok=False)
    assert missing.code == 1
    assert "No value for required variable" in missing.err, missing.text

    applied = _run(cfg, "apply", "p.plan", env=cli_env(TUNECTL_VAR_token=old))
    assert "Apply complete" in applied.out or "created" in applied.out, applied.out


@pytest.mark.parametrize(
    "value",
    [
        "local.secret",
        '"prefix-${var.token}"',
        "upper(var.token)",
        'format("%s!", var.token)',
        'join(",", [var.token])',
        '{ a = var.token }["a"]',
        'length(var.token) > 3 ? "long" : "short"',
    ],
)
def test_output_of_a_sensitive_value_must_say_so(tmp_path: Path, value: str) -> None:
    hcl = f"""\
    variable "token" {{
      sensitive = true
      default   = "x"
    }}
    locals {{
      secret = "s-${{var.token}}"
    }}
    output "leak" {{
      value = {value}
    }}
    """
    cfg = write(tmp_path / "cfg", {"main.hcl": hcl})
    result = _run(cfg, "validate", env=cli_env(), ok=False)
    assert result.code == 1
    assert "Error: Output refers to sensitive values" in result.err, result.text
    assert "on main.hcl line 8" in result.err
    assert "sensitive = true" in result.err
    assert "Traceback" not in result.text
    fixed = hcl.replace(
        f"      value = {value}\n", f"      value = {value}\n      sensitive = true\n"
    )
    write(cfg, {"main.hcl": fixed})
    assert _run(cfg, "validate", env=cli_env()).out.startswith("Success!")


def test_output_not_derived_from_a_secret_needs_no_mark(tmp_path: Path) -> None:
    hcl = """\
    variable "token" {
      sensitive = true
      default   = "x"
    }
    variable "name" {
      default = "n"
    }
    output "ok" {
      value = upper(var.name)
    }
    """
    cfg = write(tmp_path / "cfg", {"main.hcl": hcl})
    assert _run(cfg, "validate", env=cli_env()).out.startswith("Success!")


def test_errors_never_echo_a_sensitive_value(tmp_path: Path) -> None:
    token = _token()
    hcl = """\
    variable "token" {
      type      = string
      sensitive = true
    }
    variable "count" {
      type      = number
      sensitive = true
    }
    variable "pin" {
      type      = string
      sensitive = true
      validation {
        condition     = length(var.pin) == 4
        error_message = "The pin ${var.pin} must have 4 digits."
      }
    }
    locals {
      n = tonumber(var.token)
    }
    """
    cfg = write(tmp_path / "cfg", {"main.hcl": hcl})
    env = cli_env(TUNECTL_VAR_token=token, TUNECTL_VAR_count=token, TUNECTL_VAR_pin=token)
    result = _run(cfg, "validate", env=env, ok=False)
    assert result.code == 1
    assert "Traceback" not in result.text
    assert "Error: Invalid value for input variable" in result.err, result.err
    assert 'variable "count"' in result.err
    assert "it must be a number (the value is sensitive: not shown)" in result.err
    _assert_absent(token, "validate's errors", result.text)

    del env["TUNECTL_VAR_count"]
    env["TUNECTL_VAR_count"] = "3"
    result = _run(cfg, "validate", env=env, ok=False)
    assert result.code == 1
    assert "The error message included a sensitive value, so it will not be displayed." in (
        result.err
    ), result.err
    assert "Invalid function argument" in result.err or "tonumber" in result.err, result.err
    assert "(sensitive value)" in result.err, result.err
    _assert_absent(token, "validate's errors", result.text)
    json_result = _run(cfg, "validate", "--json", env=env, ok=False)
    _assert_absent(token, "validate --json", json_result.text)


def test_state_holds_a_salted_hash_not_the_value(tmp_path: Path) -> None:
    token = _token()
    cfg = write(tmp_path / "cfg", {"main.hcl": ROTATE, "trial.py": TRIAL})
    _run(cfg, "apply", "--auto-approve", env=cli_env(TUNECTL_VAR_token=token))
    stored = json.loads(
        _run(cfg, "state", "show", "experiment.demo", env=cli_env(TUNECTL_VAR_token=token)).out
    )
    auth = stored["config"]["trial"]["task"]["main"]["env"]["AUTH"]
    assert auth.startswith("(sensitive value) hmac-sha256:")
    # Salted: the same value in another state gets another hash.
    other = write(tmp_path / "other", {"main.hcl": ROTATE, "trial.py": TRIAL})
    _run(other, "apply", "--auto-approve", env=cli_env(TUNECTL_VAR_token=token))
    stored2 = json.loads(
        _run(other, "state", "show", "experiment.demo", env=cli_env(TUNECTL_VAR_token=token)).out
    )
    assert stored2["config"]["trial"]["task"]["main"]["env"]["AUTH"] != auth
    plain = hashlib.sha256(json.dumps(f"Bearer {token}").encode()).hexdigest()
    assert plain not in auth


TASKS = """\
variable "token" {
  type      = string
  sensitive = true
}

experiment "demo" {
  algorithm "random" {
    seed = 1
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials = 1
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  trial {
    workdir = "."
    task "prepare" {
      command = ["python3", "-c", "print('prepared')"]
    }
    task "train" {
      command = ["python3", "trial.py", "${var.token}-tail", "${param.x}"]
      env = {
        AUTH = "Bearer ${var.token}"
      }
    }
  }
}
"""


def test_secret_in_one_task_of_an_exec_form_trial(tmp_path: Path) -> None:
    token = _token()
    cfg = write(tmp_path / "cfg", {"main.hcl": TASKS, "trial.py": TRIAL})
    env = cli_env(TUNECTL_VAR_token=token)
    plan = json.loads(_run(cfg, "plan", "--json", env=env).out)
    tasks = plan["changes"][0]["after"]["trial"]["task"]
    assert tasks["prepare"]["command"] == ["python3", "-c", "print('prepared')"]
    assert tasks["train"]["command"] == "(sensitive value)"
    applied = _run(cfg, "apply", "--auto-approve", env=env)

    received = json.loads(next(cfg.rglob("received.json")).read_text())
    assert received["arg"] == hashlib.sha256(f"{token}-tail".encode()).hexdigest()
    assert received["auth"] == hashlib.sha256(f"Bearer {token}".encode()).hexdigest()
    specs = {
        json.loads(p.read_text())["task_name"]: json.loads(p.read_text())
        for p in cfg.rglob("spec.json")
    }
    assert specs["prepare"]["command"] == ["python3", "-c", "print('prepared')"]
    assert specs["train"]["command"] == "(sensitive value)"
    assert specs["train"]["env_names"] == ["AUTH"]
    for path in _walk(cfg):
        _assert_absent(token, str(path.relative_to(tmp_path)), path.read_bytes())
    _assert_absent(token, "apply's output", applied.text)


def test_a_value_stored_in_clear_is_hidden_once_declared_sensitive(tmp_path: Path) -> None:
    # A state written before the variable was declared sensitive (or by an older tunectl)
    # holds the value in clear: the next plan hides it in the state and shows no change.
    token = _token()
    clear = ROTATE.replace("  sensitive = true\n", "")
    cfg = write(tmp_path / "cfg", {"main.hcl": clear, "trial.py": TRIAL})
    env = cli_env(TUNECTL_VAR_token=token)
    _run(cfg, "apply", "--auto-approve", env=env)
    assert token.encode() in (cfg / "state" / "tunectl.db").read_bytes()

    write(cfg, {"main.hcl": ROTATE})
    out = _run(cfg, "plan", env=env).out
    assert "No changes." in out, out
    _assert_absent(token, "plan", out)
    stored = json.loads(_run(cfg, "state", "show", "experiment.demo", env=env).out)
    assert stored["config"]["trial"]["task"]["main"]["env"]["AUTH"].startswith("(sensitive value)")
