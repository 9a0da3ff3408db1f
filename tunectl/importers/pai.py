"""`tunectl import pai`: PAI AutoML's `HpoExperimentConfig` (its API's JSON) as HCL.

The file is the struct itself, or a request body holding it (`Name`, `Description`,
`WorkspaceId`, `HpoExperimentConfig`); a section may be an object or JSON text, as the
API carries it. `yml_config` is NNI's `exp.yml` (`tuners`); `platform_config.cmd` (or
`cmd1`, `cmd2`, ...) become `task "cmdN"` blocks run in order: `dlc submit ...` lines on
the DLC provider (`commands.dlc_submit`), `PAI -name ...` lines and SQL on MaxCompute,
shell lines on the local provider. `metric_config` becomes the tasks' `metrics` blocks and
the objective; `odps_config` and `dlc_config` the provider blocks, without credentials.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunectl.importers import schedule, tuners
from tunectl.importers.commands import dlc_submit, pai_command, placeholders, unquote_pai
from tunectl.importers.hclwriter import Block, render
from tunectl.importers.model import Imported, Notes, fail, load_mapping
from tunectl.importers.model import duration as to_duration
from tunectl.importers.space import SpaceReader, param_name

PLATFORMS = {"dlc": "dlc", "maxcompute": "maxcompute", "local": "local"}
SECTIONS_NOT_MAPPED = {
    "output_config": "each trial writes to ${trial.model_dir} (storage block: docs/storage.md)",
    "params_config": "pass parameters as flags, env or ${trial.params_json}",
    "oss_config": 'models go to a storage "s3" block; credentials from the environment',
    "paiflow_config": "paiflow has no tunectl provider",
    "ts_config": "not a setting tunectl has",
    "k8s_config": "not a setting tunectl has",
}
CREDENTIALS = ("access_id", "access_key", "accessKeyID", "accessKeySecret", "role_arn")
DEFAULT_REGION = "cn-hangzhou"
# oss-cn-beijing(-internal).aliyuncs.com, service.cn-beijing.maxcompute..., pai-dlc.cn-...
REGION_IN_ENDPOINT = r"(?:oss|service|pai-dlc(?:-vpc)?)[.-]([a-z]+-[a-z0-9-]+?)(?:-internal)?\."


def _section(data: Mapping[str, Any], key: str, path: Path) -> Any:
    value = data.get(key)
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            fail("Malformed PAI AutoML configuration", f"{key} is not valid JSON: {exc.msg}.", path)
    if key == "yml_config" and isinstance(value, str):
        import yaml

        try:
            return yaml.safe_load(value)
        except yaml.YAMLError as exc:
            fail("Malformed PAI AutoML configuration", f"yml_config is not valid YAML: {exc}.")
    if value is not None and not isinstance(value, Mapping):
        fail(
            "Malformed PAI AutoML configuration",
            f"{key} must be an object (a map of settings), not {type(value).__name__}.",
            path,
        )
    return value


def _commands(platform: Mapping[str, Any]) -> list[str]:
    cmd = platform.get("cmd")
    if isinstance(cmd, list):
        return [str(c) for c in cmd]
    if isinstance(cmd, str):
        return [cmd]
    keyed = [(k, v) for k, v in platform.items() if k.startswith("cmd") and k[3:].isdigit()]
    return [str(v) for _, v in sorted(keyed, key=lambda kv: int(kv[0][3:]))]


class PaiImport:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.notes = Notes()
        self.providers: dict[str, Block] = {}
        self.tasks: list[Block] = []
        self.dlc_workspace: str | None = None  # a dlc submit line's --workspace_id
        self.event_bucket: str | None = None  # the OSS bucket of a summary metric source

    def run(self) -> Imported:
        path, notes = self.path, self.notes
        data = load_mapping(path, "PAI AutoML configuration")
        meta: Mapping[str, Any] = {}
        if "HpoExperimentConfig" in data:
            meta, data = data, _section(data, "HpoExperimentConfig", path)
            if not isinstance(data, Mapping):
                fail("Malformed PAI AutoML configuration", "HpoExperimentConfig must be an object.")
        yml = _section(data, "yml_config", path) or {}
        platform = _section(data, "platform_config", path)
        metric = _section(data, "metric_config", path) or {}
        space = _section(data, "search_space", path)
        if not isinstance(yml, Mapping) or not isinstance(metric, Mapping):
            fail("Malformed PAI AutoML configuration", "yml_config and metric_config are objects.")
        if not isinstance(platform, Mapping):
            fail("Missing platform_config", f"{path.name} needs platform_config with cmd lines.")
        if space is None:
            fail("Missing search space", f"{path.name} has no search_space.", path)

        reader = SpaceReader(path, notes, "search_space")
        params = reader.read(space)
        keys = dict(reader.names)
        algorithm, direction = tuners.tuner(
            yml.get("tuner") or {"name": "TPE"}, "yml_config.tuner", notes, "class_args"
        )
        stopping, assessor_mode = tuners.assessor(
            yml.get("assessor"), "yml_config.assessor", notes, "class_args"
        )
        # trial.ini's optimize_mode, else the tuner's, else the assessor's
        ini_mode = str(metric.get("optimize_mode") or "").lower()
        given_mode = ini_mode if ini_mode in ("maximize", "minimize") else None
        direction = given_mode or direction or assessor_mode
        if direction is None:
            direction = tuners.default_direction(algorithm, "yml_config.tuner", notes, "PAI")

        kind = str(platform.get("name") or "")
        provider = PLATFORMS.get(kind.lower())
        if provider is None:
            fail(
                "Unsupported platform",
                f'platform_config.name is "{kind}"; tunectl imports DLC, MaxCompute and LOCAL.',
            )
        commands = _commands(platform)
        if not commands:
            fail("Missing commands", "platform_config has no cmd: the trials have nothing to run.")
        for index, line in enumerate(commands, start=1):
            self._task(provider, index, line, keys, data, meta)
        if not self.tasks:
            fail("No task imported", "None of platform_config's cmd lines could be imported.")
        resume = str(platform.get("resume", "")) == "1"  # re-run from the failed command
        objective = self._metrics(metric, keys, direction)
        self._providers(provider, data, meta)

        name = param_name(str(yml.get("experiment_name") or meta.get("Name") or path.stem))
        exp = Block("experiment", (name,))
        description = (
            meta.get("Description") or f"Imported from the PAI AutoML experiment {path.name}"
        )
        exp.set("description", str(description))
        exp.items.append(("block", algorithm))
        exp.items.append(("block", objective))
        count = yml.get("max_trial_number", yml.get("maxTrialNumber"))
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            given = "not given" if count is None else repr(count)
            notes.add("yml_config.max_trial_number", f"{given}: max_trials = 100.")
            count = 100
        exp.set("max_trials", count)
        concurrency = yml.get("trial_concurrency", yml.get("trialConcurrency"))
        if isinstance(concurrency, int) and concurrency >= 1:
            exp.set("max_concurrent", concurrency)
        duration = yml.get("maxExperimentDuration")
        if duration:
            exp.set("max_duration", to_duration(duration, "yml_config.maxExperimentDuration"))
        if stopping is not None:
            exp.items.append(("block", stopping))
        window = schedule.schedule(_section(data, "schedule_config", path), notes)
        if window is not None:
            exp.items.append(("block", window))
        schedule.monitor(_section(data, "monitor_config", path), notes)
        for block in params:
            exp.items.append(("block", block))
        trial = exp.block("trial")
        trial.set("provider", provider)
        if resume:
            trial.set("retries", 1)
        if len(self.tasks) == 1:  # one command: the trial's own
            trial.items.extend(self.tasks[0].items)
        else:
            trial.items.extend(_shared(self.tasks))
            trial.items.extend(("block", task) for task in self.tasks)
        self._not_mapped(data, meta, yml)
        header = [f"Imported from {path.name} by `tunectl import pai` (docs/import.md)."]
        storage = self._storage(data)
        blocks = [self.providers[p] for p in sorted(self.providers)]
        blocks += ([storage] if storage else []) + [exp]
        text = render(blocks, header)
        for key, name in keys.items():
            if "${param." + name + "}" not in text:
                notes.add(
                    f"search_space.{key}",
                    "no command uses it (PAI may substitute it into a file: params_config), "
                    "so trials get it only in ${trial.params_json}.",
                )
        return Imported(text, list(notes))

    def _task(
        self,
        provider: str,
        index: int,
        line: str,
        keys: Mapping[str, str],
        data: Mapping[str, Any],
        meta: Mapping[str, Any],
    ) -> None:
        where = f"platform_config.cmd{index}"
        task = Block("task", (f"cmd{index}",))
        text = line.strip()
        if provider == "dlc":
            if text.startswith("dlc config"):
                self.notes.add(
                    where,
                    "dlc config sets the CLI's credentials and endpoint: the endpoint and "
                    'region are provider "dlc"\'s, credentials come from the environment.',
                )
                return
            job = dlc_submit(text, keys, where, self.notes)
            if job is None:
                self.notes.add(
                    where, "not a dlc submit line: a DLC trial runs jobs only; not imported."
                )
                return
            if job.command is not None:
                task.set("command", job.command)
            for key, value in job.settings.items():
                task.set(key, value)
            if job.workspace_id:
                self.dlc_workspace = job.workspace_id
            if job.command is None:
                return
        elif provider == "maxcompute":
            body = pai_command(text)
            if body is not None:
                task.set("pai", placeholders(unquote_pai(body), keys, where, self.notes))
            else:
                task.set("sql", placeholders(text, keys, where, self.notes))
        else:
            task.set("command", placeholders(text, keys, where, self.notes))
        self.tasks.append(task)

    def _metrics(self, metric: Mapping[str, Any], keys: Mapping[str, str], direction: str) -> Block:
        notes = self.notes
        objective = Block("objective")
        kind = str(metric.get("metric_type") or "stdout").lower()
        sources = metric.get("metric_source") or []
        if isinstance(sources, str):
            sources = [sources]
        weights = metric.get("metric_dict") or {}
        if isinstance(weights, str):
            try:
                weights = json.loads(weights.replace("'", '"'))
            except json.JSONDecodeError:
                fail("Malformed metric_config", "metric_dict must be a map of metric to weight.")
        if not isinstance(weights, Mapping) or not weights:
            notes.add("metric_config.metric_dict", 'not given: the objective is metric "default".')
            weights = {"default": 1}
        names: dict[str, str] = {}
        several = self._several_sources(kind, sources)
        if kind == "stdout":
            names = self._stdout(sources if several else sources[:1], weights)
        elif kind == "summary":  # a TensorBoard tag is the metric's name, as it is
            names = {str(k): str(k) for k in weights}
            if sources:
                self._summary(str(sources[0]), [str(k) for k in weights], keys)
        else:
            names = {str(k): param_name(str(k)) for k in weights}
            if sources:
                self._source(kind, str(sources[0]), keys)
        reduced = {names[k]: w for k, w in weights.items() if k in names}
        if len(reduced) == 1 and next(iter(reduced.values())) == 1:
            objective.set("metric", next(iter(reduced)))
        else:
            objective.set("metrics", reduced)
        objective.set("direction", direction)
        mode = str(metric.get("final_mode") or "best")
        if mode not in ("final", "best", "avg"):
            notes.add("metric_config.final_mode", f'"{mode}" is not final, best or avg: "best".')
            mode = "best"
        objective.set("reduce", mode)
        if several:
            across = str(metric.get("source_list_final_mode") or mode)
            if across not in ("final", "best", "avg"):
                notes.add(
                    "metric_config.source_list_final_mode",
                    f'"{across}" is not final, best or avg: "{mode}".',
                )
                across = mode
            objective.set("sources_reduce", across)
        return objective

    def _several_sources(self, kind: str, sources: list[Any]) -> bool:
        """Whether each of several sources is a task's output (`cmd1`, `cmd2`, ...): then
        each task is a source, reduced across by `sources_reduce`."""
        if len(sources) < 2:
            return False
        tasks = [self._task_named(str(source)) for source in sources]
        if kind == "stdout" and all(tasks) and len({id(t) for t in tasks}) == len(tasks):
            return True
        self.notes.add(
            "metric_config.metric_source",
            f"{len(sources)} sources: only the first is read. tunectl reads several sources "
            "as a trial's tasks (objective.sources_reduce): one task per source.",
        )
        return False

    def _task_named(self, source: str) -> Block | None:
        found = re.fullmatch(r"cmd(\d+)", source.split(",")[0].strip())
        if found:
            label = f"cmd{found.group(1)}"
            return next((t for t in self.tasks if t.labels == (label,)), None)
        return None

    def _stdout(self, sources: list[Any], weights: Mapping[str, Any]) -> dict[str, str]:
        names = self._stdout_of(str(sources[0]) if sources else "", weights)
        for source in sources[1:]:  # several task sources (`_several_sources`): each read
            self._stdout_of(str(source), weights)
        return names

    def _stdout_of(self, source: str, weights: Mapping[str, Any]) -> dict[str, str]:
        source = source or f"cmd{len(self.tasks)}"
        task = self._task_named(source) or (self.tasks[-1] if self.tasks else None)
        if "," in source:
            self.notes.add(
                "metric_config.metric_source", f'"{source}": every log of the job is read.'
            )
        if task is None or not source.startswith("cmd"):
            self.notes.add(
                "metric_config.metric_source", f'"{source}": read the last task\'s output.'
            )
            task = task or self.tasks[-1]
        names: dict[str, str] = {}
        for regex in weights:
            words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", str(regex).split("(")[0])
            base = param_name(words[-1]) if words else "metric"
            name, n = base, 2
            while name in names.values():
                name, n = f"{base}_{n}", n + 1
            names[str(regex)] = name
            block = task.block("metrics", "stdout")
            block.set("pattern", str(regex))
            block.set("name", name)
        return names

    def _source(self, kind: str, source: str, keys: Mapping[str, str]) -> None:
        where = "metric_config.metric_source"
        task = self.tasks[-1]
        if kind == "table":
            block = task.block("metrics", "table")
            sql = re.sub(r'"([^"]*\$\{[^"]*)"', r"'\1'", source)  # a literal as '...'
            block.set("sql", placeholders(sql, keys, where, self.notes))
        elif kind == "json":
            block = task.block("metrics", "json")
            block.set("path", placeholders(source, keys, where, self.notes))
        else:
            self.notes.add(where, f'metric_type "{kind}": report with tunectl.report() instead.')

    def _summary(self, source: str, tags: list[str], keys: Mapping[str, str]) -> None:
        """PAI's `summary` metrics: the event directory as `metrics "tensorboard"`; one on
        OSS is read by tunectl through a `storage "s3"` block for its bucket."""
        block = self.tasks[-1].block("metrics", "tensorboard")
        block.set("logdir", placeholders(source, keys, "metric_config.metric_source", self.notes))
        if len(tags) == 1:
            block.set("tag", tags[0])
        found = re.match(r"(oss|s3)://([^/${}]+)/", source)
        if found:
            self.event_bucket = found.group(2)

    def _storage(self, data: Mapping[str, Any]) -> Block | None:
        """The `storage "s3"` block an OSS event directory needs: its bucket, at the OSS
        endpoint of `oss_config`, else of the region the experiment runs in."""
        if self.event_bucket is None:
            return None
        config = _section(data, "oss_config", self.path) or {}
        block = Block("storage", ("s3",))
        block.set("bucket", self.event_bucket)
        endpoint = str(config.get("endpoint") or "")
        if endpoint and "://" not in endpoint:
            endpoint = "https://" + endpoint
        region = self._region(data, endpoint)
        block.set("endpoint", endpoint or f"https://oss-{region}.aliyuncs.com")
        block.set("region", region)
        self._credentials(config, "oss_config")
        self.notes.add(
            "metric_config.metric_source",
            f'event files on OSS are read through storage "s3" (bucket {self.event_bucket}), '
            "which also keeps the trials' models: credentials from AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (an OSS AccessKey), docs/storage.md.",
        )
        return block

    def _region(self, data: Mapping[str, Any], endpoint: str) -> str:
        """The Alibaba Cloud region named by an OSS, MaxCompute or DLC endpoint or setting."""
        odps = _section(data, "odps_config", self.path) or {}
        dlc = _section(data, "dlc_config", self.path) or {}
        for given in (dlc.get("region"), odps.get("region")):
            if given:
                return str(given)
        for text in (endpoint, odps.get("end_point"), dlc.get("endpoint")):
            found = re.search(REGION_IN_ENDPOINT, str(text or ""))
            if found:
                return found.group(1)
        self.notes.add("oss_config.endpoint", f'not given: region "{DEFAULT_REGION}"; check it.')
        return DEFAULT_REGION

    def _providers(self, provider: str, data: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        notes = self.notes
        if provider == "dlc":
            config = _section(data, "dlc_config", self.path) or {}
            block = Block("provider", ("dlc",))
            endpoint = config.get("endpoint")
            region = config.get("region")
            if not region and endpoint:
                found = re.search(r"pai-dlc(?:-vpc)?\.([a-z0-9-]+)\.aliyuncs", str(endpoint))
                region = found.group(1) if found else None
            if not region:
                notes.add("dlc_config.region", f'not given: region = "{DEFAULT_REGION}"; check it.')
                region = DEFAULT_REGION
            block.set("region", region)
            workspace = config.get("workspace_id") or meta.get("WorkspaceId") or self.dlc_workspace
            if workspace:
                block.set("workspace_id", str(workspace))
            if endpoint:
                block.set("endpoint", str(endpoint))
            if config.get("protocol"):
                block.set("protocol", str(config["protocol"]))
            self._credentials(config, "dlc_config")
            self.providers["dlc"] = block
        elif provider == "maxcompute":
            config = _section(data, "odps_config", self.path) or {}
            block = Block("provider", ("maxcompute",))
            for source, target in (
                ("project_name", "project"),
                ("end_point", "endpoint"),
                ("log_view_host", "logview_host"),
                ("region", "region_name"),
            ):
                if config.get(source):
                    block.set(target, str(config[source]))
            if not config.get("project_name"):
                notes.add("odps_config.project_name", "not given: set project in provider.")
            self._credentials(config, "odps_config")
            self.providers["maxcompute"] = block

    def _credentials(self, config: Mapping[str, Any], section: str) -> None:
        for key in CREDENTIALS:
            if key in config:
                self.notes.add(
                    f"{section}.{key}",
                    "credentials are never written to HCL: use Alibaba Cloud's credential "
                    "chain (ALIBABA_CLOUD_ACCESS_KEY_ID, ..., a profile, a RAM role).",
                )

    def _not_mapped(self, data: Mapping[str, Any], meta: Mapping[str, Any], yml: Any) -> None:
        for key, why in SECTIONS_NOT_MAPPED.items():
            if data.get(key):
                self.notes.add(key, f"none: {why}.")
        if meta.get("Accessibility"):
            self.notes.add("Accessibility", "none: who may read the state may read it.")
        if meta.get("Tag"):
            self.notes.add("Tag", "none: jobs carry tunectl's own tags.")
        for key in ("debug", "log_level"):
            if key in yml:
                self.notes.add(f"yml_config.{key}", "none: apply prints its events.")


BODIES = ("command", "pai", "sql")


def _shared(tasks: list[Block]) -> list[tuple[str, Any]]:
    """The settings every task has with the same value, moved to the trial (a DLC trial
    needs its `image` there)."""
    settings = [
        {item[0]: item for kind, item in task.items if kind == "attr" and item[0] not in BODIES}
        for task in tasks
    ]
    common = [
        name
        for name, item in settings[0].items()
        if all(name in other and other[name][1] == item[1] for other in settings[1:])
    ]
    for task in tasks:
        task.items = [(k, i) for k, i in task.items if not (k == "attr" and i[0] in common)]
    return [("attr", settings[0][name]) for name in common]


def import_pai(path: Path, out_dir: Path) -> Imported:
    """The HCL of the PAI AutoML experiment in `path` (its HpoExperimentConfig, as JSON)."""
    return PaiImport(path).run()
