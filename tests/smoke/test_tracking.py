"""Stages write a real local MLflow store: one parent per pipeline run, one child per stage."""

import mlflow


def test_stage_runs_are_children_of_one_parent_with_params_and_pictures(rendered):
    mlflow.set_tracking_uri(f"sqlite:///{rendered}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["detection"], output_format="list")
    by_name = {r.info.run_name: r for r in runs}
    assert {"render", "real"} <= set(by_name)
    parents = {by_name[n].data.tags["mlflow.parentRunId"] for n in ("render", "real")}
    assert len(parents) == 1
    parent = mlflow.get_run(parents.pop())
    assert parent.data.tags["pipeline"] == "detection" and len(parent.data.tags["params_hash"]) == 12
    render = by_name["render"]
    assert render.info.status == "FINISHED"
    assert render.data.params["camera.width"] == "192" and render.data.metrics["images"] == 3
    assert render.data.metrics["wall_seconds"] > 0 and render.data.tags["git_rev"]
    arts = [a.path for a in mlflow.MlflowClient().list_artifacts(render.info.run_id)]
    assert "render_grid.png" in arts


def test_two_stages_creating_the_experiment_at_once_share_it(tmp_path):
    """The loser of a create race (concurrent stages) reads the winner's experiment instead of failing."""
    import mlflow

    from pipeline.tracking import _experiment

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        first = mlflow.create_experiment("race")

        answers = iter([None, mlflow.get_experiment_by_name("race")])

        class Late:  # a process that looked before the other created it, and creates after
            get_experiment_by_name = staticmethod(lambda name: next(answers))
            create_experiment = staticmethod(mlflow.create_experiment)

        assert _experiment(Late(), "race") == first
    finally:
        mlflow.set_tracking_uri(None)
