"""Sensor stages end to end on tiny settings: one run per variant × seed, a report with mean ± CI over
the seeds, the within-class diversity and the collapse alarm; a bad seed fails in one line."""

import json

from tests.conftest import run_stage, write_params


def test_runs_per_seed_and_report_over_seeds(tmp_path):
    write_params(tmp_path, {"sensor_train_gan": {"run": ["dcgan", "cdcgan_sn_ms"], "seeds": [0, 1]}})
    assert run_stage("stages.sensor.prepare", tmp_path, "--out", "prep").returncode == 0
    for variant in ("dcgan", "cdcgan_sn_ms"):
        for seed in ("0", "1"):
            res = run_stage("stages.sensor.train_gan", tmp_path, "--name", variant, "--seed", seed, "--prepared",
                            "prep", "--out", f"gans/{variant}-{seed}", "--plots", f"m/{variant}-{seed}.csv",
                            "--metrics", f"m/{variant}-{seed}.json")
            assert res.returncode == 0, res.stderr[-2000:]
    a, b = (json.loads((tmp_path / f"m/cdcgan_sn_ms-{s}.json").read_text()) for s in (0, 1))
    assert a["samples"] == b["samples"] and a != b  # two seeds, two runs
    res = run_stage("stages.sensor.classify", tmp_path, "--prepared", "prep", "--gans", "gans", "--out", "rep",
                    "--metrics", "m/classify.json")
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((tmp_path / "m/classify.json").read_text())
    assert set(m["runs"]) == {"dcgan-0", "dcgan-1", "cdcgan_sn_ms-0", "cdcgan_sn_ms-1"}
    v = m["variants"]["cdcgan_sn_ms"]
    assert v["seeds"] == [0, 1] and v["generated_accuracy"]["n"] == 2 and v["diversity_ratio"]["n"] == 2
    assert "generated_accuracy" not in m["variants"]["dcgan"]
    assert set(m["collapsed"]) == {"dcgan", "cdcgan_sn_ms"}
    report = (tmp_path / "rep/report.md").read_text()
    assert "seeds 0, 1" in report and "diversity / real" in report
    assert (tmp_path / "rep/traces_cdcgan_sn_ms.png").is_file()


def test_bad_seed_fails_in_one_line(tmp_path):
    write_params(tmp_path)
    res = run_stage("stages.sensor.train_gan", tmp_path, "--name", "dcgan", "--seed", "x1", "--prepared", "p",
                    "--out", "o", "--plots", "o.csv")
    assert res.returncode == 2 and res.stderr.strip().splitlines()[-1] == "error: --seed: expected an int >= 0, got 'x1'"
