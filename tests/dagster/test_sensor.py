import dagster as dg


def test_inbox_sensor_requests_one_run_per_new_file(defs, tmp_path, monkeypatch):
    monkeypatch.setenv("PATAS_HOME", str(tmp_path))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "day1.jsonl").write_text('{"text": "hi", "is_spam": false}\n')
    (inbox / "readme.txt").write_text("not a message file")
    sensor = defs.resolve_sensor_def("inbox_sensor")
    with dg.instance_for_test() as instance:
        result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    requests = result.run_requests
    assert len(requests) == 1
    paths = requests[0].run_config["resources"]["run_spec"]["config"]["ingest_paths"]
    assert paths == [str(inbox / "day1.jsonl")]
    assert requests[0].run_key.startswith("day1.jsonl:")
