"""PAI AutoML's `schedule_config` and `monitor_config`, where tunectl's schema has them.

The `schedule` and `notify` blocks are newer than the importer's first release: each is
written only when the experiment schema of the tunectl that runs has it, and noted
otherwise, so what `tunectl import pai` writes always validates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tunectl.importers.hclwriter import Block
from tunectl.importers.model import Notes

DAYS = {"everyday": "everyday", "weekend": "weekend", "weekday": "weekdays", "weekdays": "weekdays"}
_TIME = re.compile(r"([01]?\d|2[0-3]):[0-5]\d")


def schedule(config: Any, notes: Notes) -> Block | None:
    """The `schedule` block of PAI's `schedule_config` (`day`, `start_time`, `end_time`)."""
    if not isinstance(config, Mapping) or not config:
        return None
    block = Block("schedule")
    day = str(config.get("day") or "everyday").lower()
    if day in DAYS:
        block.set("days", [DAYS[day]])
    else:
        notes.add("schedule_config.day", f'"{day}" is not everyday or weekend: every day.')
    for source, target in (("start_time", "start"), ("end_time", "end")):
        value = str(config.get(source) or "")
        if _TIME.fullmatch(value):
            block.set(target, value if len(value) == 5 else "0" + value)
        elif value:
            notes.add(f"schedule_config.{source}", f'"{value}" is not HH:MM: left out.')
    notes.add(
        "schedule_config",
        'PAI\'s clock is the region\'s: timezone = "UTC" unless set (e.g. "Asia/Shanghai").',
    )
    return block


def monitor(config: Any, notes: Notes) -> None:
    """PAI's DingTalk `monitor_config`: its URL holds the robot's token, so it is never
    written; the note says how to write the `notify` block."""
    if not isinstance(config, Mapping) or not config:
        return
    keyword = config.get("keyword")
    extra = f', keyword = "{keyword}"' if keyword else ""
    notes.add(
        "monitor_config",
        'the robot\'s URL holds its token and is not written here: add notify "webhook" { '
        f'url = var.hook, format = "dingtalk"{extra} }} with the URL in a sensitive '
        "variable (TUNECTL_VAR_hook).",
    )
    for key in ("at_mobiles", "at_user_ids", "is_at_all"):
        if config.get(key):
            notes.add(f"monitor_config.{key}", "none: a message mentions no one.")
