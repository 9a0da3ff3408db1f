"""`notify "webhook" { url, on, format }`: where an experiment's news is posted.

PAI AutoML's `monitor_config` (a DingTalk robot's `url`, its `keyword`). This module owns
the block's decoding; delivery (a background thread, retries) is `tunectl.engine.notify`.
The URL carries the robot's token, so it is always treated as sensitive: the state and
plans keep only a marker of it, and messages name only its host.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from tunectl.diags import Diagnostics, did_you_mean
from tunectl.hcl.expr import Scope
from tunectl.hcl.syntax import Block
from tunectl.hcl.values import Template

NOTIFY_KINDS = ("webhook",)
# best: a trial improved on the best value; failed: a trial failed; finished: the
# experiment ended (its stop reason and best trial).
EVENTS = ("best", "failed", "finished")
FORMATS = ("json", "dingtalk", "slack")


@dataclass(frozen=True)
class Notify:
    kind: str
    url: str
    on: tuple[str, ...] = EVENTS
    format: str = "json"
    # DingTalk robots with a keyword check only post messages that contain it.
    keyword: str = ""

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"url": self.url, "on": list(self.on), "format": self.format}
        if self.keyword:
            out["keyword"] = self.keyword
        return out

    @property
    def host(self) -> str:
        """What messages may say of the URL (never its path or query: the token)."""
        parts = urlsplit(self.url)
        if not parts.hostname:
            return "the webhook"
        return parts.hostname + (f":{parts.port}" if parts.port else "")


def decode_notify(block: Block, scope: Scope, context: str, diags: Diagnostics) -> Notify | None:
    """The `notify` block, or None when it has an error (said in `diags`)."""
    # Here, not at the top: the model imports this module, and the schema reads the
    # algorithm registry when it is first imported (after plugins register).
    from tunectl.config.schema import Reader

    reader = Reader(block.body, scope, context, diags)
    start = len(diags)
    url = reader.get("url", "string")
    if isinstance(url, Template):
        reader.fail(
            block.body.attributes.get("url"),
            "Value not known until a trial is created",
            "url cannot use ${param.*}, ${trial.*} or ${experiment.*}.",
        )
    elif url is not None and urlsplit(str(url)).scheme not in ("http", "https"):
        # Never quote the URL itself: it holds the robot's token.
        reader.fail(
            block.body.attributes.get("url"),
            "Invalid notify",
            "url must be an http:// or https:// address.",
        )
    elif url is not None and "@" in urlsplit(str(url)).netloc:
        reader.fail(
            block.body.attributes.get("url"),
            "Invalid notify",
            "url must not hold user:password@: put the token in the path or the query, as "
            "DingTalk and Slack webhooks do.",
        )
    on = reader.get("on", "list", list(EVENTS))
    for item in on or []:
        if item not in EVENTS:
            reader.fail(
                block.body.attributes.get("on"),
                "Invalid notify",
                f'"{item}" is not an event.{did_you_mean(str(item), EVENTS)} '
                f"Choose from: {', '.join(EVENTS)}.",
            )
    if on is not None and not on:
        reader.fail(block.body.attributes.get("on"), "Invalid notify", "on is empty.")
    fmt = reader.get("format", "string", "json")
    if fmt not in FORMATS:
        reader.fail(
            block.body.attributes.get("format"),
            "Invalid notify",
            f'format must be one of {", ".join(FORMATS)}, got "{fmt}".'
            f"{did_you_mean(str(fmt), FORMATS)}",
        )
    keyword = reader.get("keyword", "string", "")
    if url is None or Diagnostics(diags[start:]).has_errors():
        return None
    ordered = tuple(e for e in EVENTS if e in (on or []))
    return Notify(block.labels[0], str(url), ordered, str(fmt), str(keyword or ""))
