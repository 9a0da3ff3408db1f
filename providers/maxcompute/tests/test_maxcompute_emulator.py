"""Real pyodps against the MaxCompute emulator over HTTP: SQL, tables, XFlow, stop, listing."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET

import pytest
from odps import ODPS, errors
from odps.models import Instance
from tunectl_maxcompute.emulator import Server


def rows(reader) -> list[list]:
    return [list(record.values) for record in reader]


def test_sql_runs_and_its_results_are_read_back(odps: ODPS) -> None:
    odps.execute_sql(
        "CREATE TABLE IF NOT EXISTS evals (trial bigint, auc double) LIFECYCLE 7;\n"
        "INSERT INTO TABLE evals VALUES (1, 0.5), (2, 0.75);"
    )
    instance = odps.execute_sql("SELECT trial, auc FROM p.evals WHERE auc > 0.6")
    assert instance.is_successful()
    with instance.open_reader(tunnel=False) as reader:
        assert rows(reader) == [["2", "0.75"]]
    odps.execute_sql("INSERT OVERWRITE TABLE evals SELECT trial + 10, auc FROM evals")
    with odps.execute_sql("SELECT trial FROM evals").open_reader(tunnel=False) as reader:
        assert rows(reader) == [["11"], ["12"]]


def test_a_table_is_created_and_read(odps: ODPS) -> None:
    odps.execute_sql("CREATE TABLE metrics (name string, value double, step bigint)")
    odps.execute_sql("INSERT INTO metrics VALUES ('auc', 0.8, 1), ('auc', 0.9, 2)")
    assert odps.exist_table("metrics")
    assert not odps.exist_table("nothing")
    table = odps.get_table("metrics")
    assert [(c.name, str(c.type).lower()) for c in table.table_schema.columns] == [
        ("name", "string"),
        ("value", "double"),
        ("step", "bigint"),
    ]
    assert rows(table.head(1)) == [["auc", 0.8, 1]]
    assert rows(table.head(10)) == [["auc", 0.8, 1], ["auc", 0.9, 2]]


def test_a_bad_statement_is_a_parse_error_and_a_missing_table_no_such_table(odps: ODPS):
    with pytest.raises(errors.ParseError, match="ODPS-0130161"):
        odps.execute_sql("SELEC 1")
    with pytest.raises(errors.NoSuchTable, match="ODPS-0130131"):
        odps.execute_sql("SELECT * FROM missing")
    with pytest.raises(errors.NoSuchObject):
        odps.get_table("missing").reload()


def train(odps: ODPS, model: str, **params: str) -> Instance:
    return odps.execute_xflow(
        "xgboost",
        "algo_public",
        {"inputTableName": "train", "modelName": model, **params},
    )


def evaluate(odps: ODPS, model: str, output: str) -> list:
    odps.execute_xflow(
        "evaluate",
        "algo_public",
        {"inputTableName": "train", "modelName": model, "outputTableName": output},
    )
    return rows(odps.get_table(output).head(1))[0]


def test_an_xflow_trains_and_evaluate_writes_its_output_table(odps: ODPS) -> None:
    odps.execute_sql("CREATE TABLE train (x double, y bigint); INSERT INTO train VALUES (1, 0)")
    instance = odps.run_xflow(
        "xgboost",
        "algo_public",
        {"inputTableName": "train", "modelName": "good", "eta": "0.1", "max_depth": "6"},
    )
    assert not instance.is_terminated()  # PAI commands take time
    instance.wait_for_success()
    assert [t.name for t in instance.get_task_statuses().values()] == ["xgboost"]
    train(odps, "poor", eta="0.9", max_depth="2", num_round="2")
    good, poor = evaluate(odps, "good", "eval_good"), evaluate(odps, "poor", "eval_poor")
    assert 0.5 <= poor[0] < good[0] <= 0.99  # auc depends on the -D parameters
    assert good[1] > poor[1]  # and so does f1
    odps.execute_xflow(
        "LogisticRegression",
        "algo_public",
        {"inputTableName": "train", "modelName": "lr", "regularizedLevel": "0.5"},
    )
    assert 0.5 <= evaluate(odps, "lr", "eval_lr")[0] <= 0.99


def test_a_failing_xflow_fails_its_task(odps: ODPS) -> None:
    odps.execute_sql("CREATE TABLE train (x double)")
    with pytest.raises(errors.ODPSError, match="ODPS-1230002.*modelName"):
        odps.execute_xflow("xgboost", "algo_public", {"inputTableName": "train"})
    with pytest.raises(errors.ODPSError, match="ODPS-1230131"):
        odps.execute_xflow(
            "xgboost", "algo_public", {"inputTableName": "nowhere", "modelName": "m"}
        )
    with pytest.raises(errors.NoSuchObject):
        odps.run_xflow("no_such_algorithm", "algo_public", {})


def test_an_instance_is_stopped(server: Server, odps: ODPS) -> None:
    server.emulator.sql_seconds = 30
    instance = odps.run_sql("SELECT 1")
    assert instance.status == Instance.Status.RUNNING
    instance.stop()
    instance.wait_for_completion(interval=0.05)
    assert instance.status == Instance.Status.TERMINATED
    statuses = instance.get_task_statuses()
    assert [t.status for t in statuses.values()] == [Instance.Task.TaskStatus.CANCELLED]
    with pytest.raises(errors.ODPSError, match="CANCELLED"):
        instance.wait_for_success()


def test_listing_instances_and_finding_one_by_its_settings(server: Server, odps: ODPS):
    keys = {}
    for n in range(3):
        instance = odps.run_sql(
            f"SELECT {n}",
            hints={"EXT_TASK_ID": f"trial-{n}", "odps.task.workflow.custom_job_name": "tune"},
            priority=3,
        )
        keys[instance.id] = f"trial-{n}"
    xflow = odps.run_xflow(
        "xgboost", "algo_public", {"modelName": "m"}, hints={"EXT_TASK_ID": "trial-x"}
    )
    time.sleep(0.1)
    listed = list(odps.list_instances(start_time=time.time() - 60, only_owner=True))
    assert {i.id for i in listed} == {*keys, xflow.id}
    assert all(i.owner == "ALIYUN$LTAI-test" and i.start_time for i in listed)

    # Adopt by key: the settings come back through ?source (SQL) or ?xsource (XFlow).
    found = {}
    for item in listed:
        instance = odps.get_instance(item.id)
        job = instance._get_job()
        if job.tasks:
            settings = json.loads(job.tasks[0].properties["settings"])
            assert job.priority == 3
            found[settings["EXT_TASK_ID"]] = item.id
    assert found == {v: k for k, v in keys.items()}
    source = ET.fromstring(odps.get_project().xflows.get_xflow_source(xflow))
    props = {p.findtext("Name"): p.findtext("Value") for p in source.iter("Property")}
    assert props["EXT_TASK_ID"] == "trial-x"

    project = odps.get_project()
    by_name = list(project.instances.iterate(job_name="tune"))
    assert {i.id for i in by_name} == set(keys)
    page = list(project.instances.iterate(max_items=2))
    assert len(page) == 4  # iterate follows the Marker across pages
    running = list(odps.list_instances(status="Running"))
    assert [i.id for i in running] == [xflow.id]


def test_the_same_guid_gives_the_same_instance(odps: ODPS) -> None:
    first = odps.run_sql("SELECT 1", unique_identifier_id="guid-1")
    again = odps.run_sql("SELECT 2", unique_identifier_id="guid-1")
    other = odps.run_sql("SELECT 2", unique_identifier_id="guid-2")
    assert first.id == again.id != other.id
    assert odps.get_instance(first.id).get_unique_identifier_id() == "guid-1"


def test_logview_address(odps: ODPS, server: Server) -> None:
    instance = odps.run_sql("SELECT 1")
    address = instance.get_logview_address()
    # pyodps keeps the first Logview host it was told of in a process.
    assert address.startswith("http://127.0.0.1:") and "/logview/?h=" in address
    assert f"h={server.endpoint}&p=p" in address
    assert f"i={instance.id}" in address and "token=" in address
