"""What a new user meets first: --version, help texts, device errors, the accuracy table, the progress bar."""

from __future__ import annotations

import logging

import pytest

from microcircuit.analysis import ANALYSES, SUMMARIES
from microcircuit.cli import main as cli
from microcircuit.devices import check_device
from microcircuit.experiment import RunResult, accuracy_summary


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli(["--version"])
    assert exit_info.value.code == 0
    from microcircuit import __version__

    assert capsys.readouterr().out.strip() == f"microcircuit {__version__}"


def test_top_level_help_describes_the_tool(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "Argument parsing only" not in out
    assert "Latent Equilibrium" in out and "first steps" in out


def test_analyse_help_lists_every_program_on_one_line(capsys):
    assert cli(["analyse", "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in ANALYSES:
        (line,) = [x for x in lines if x.split()[:1] == [name]]
        assert SUMMARIES[name] in line
    assert cli(["analyse", "--list"]) == 0


def test_analyse_without_a_name_is_a_usage_error(capsys):
    assert cli(["analyse"]) == 2
    assert "error: name an analysis program" in capsys.readouterr().err


def test_analyse_name_help_reaches_the_program(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli(["analyse", "latency_vs_depth", "--help"])
    assert exit_info.value.code == 0
    assert "--depths" in capsys.readouterr().out


def test_validate_schema_needs_no_spec(capsys):
    import json

    assert cli(["validate", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "properties" in schema and "populations" in schema["properties"]


def test_validate_without_spec_is_a_usage_error(capsys):
    assert cli(["validate"]) == 2
    assert "validate needs spec files" in capsys.readouterr().err


def test_unknown_device_is_one_line_listing_the_valid_ones(capsys):
    assert cli(["run", "--device", "tpu", "-q", "--no-plot"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown device 'tpu'" in err and "cpu" in err and "cuda" in err and "auto" in err


@pytest.mark.parametrize("name", ["cpu", "cuda", "cuda:1", "auto"])
def test_valid_device_names(name):
    assert check_device(name) == name


@pytest.mark.parametrize("name", ["tpu", "cuda:", "cuda:x", "CPU", ""])
def test_invalid_device_names(name):
    with pytest.raises(ValueError, match="valid: cpu, cuda"):
        check_device(name)


def test_cuda_on_a_cpu_only_torch_says_so(capsys):
    import torch

    if torch.version.cuda is not None:
        pytest.skip("this torch is a CUDA build")
    assert cli(["run", "--device", "cuda", "-q", "--no-plot"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CPU-only" in err


def _result(n_seeds: int) -> RunResult:
    return RunResult(rows=[("test", 0, seed, "accuracy", 0.5 + seed / 100) for seed in range(1, n_seeds + 1)])


def test_accuracy_table_per_seed_up_to_ten_seeds():
    text = accuracy_summary(_result(10))
    lines = text.splitlines()
    assert lines[0] == "test accuracy per seed:"
    assert len(lines) == 12 and "seed 10  0.600" in text
    assert lines[-1].startswith("test accuracy: mean 0.555")


def test_accuracy_summary_only_beyond_ten_seeds_and_for_one():
    assert len(accuracy_summary(_result(11)).splitlines()) == 1
    assert accuracy_summary(_result(1)) == "test accuracy: mean 0.510, min 0.510, max 0.510 over 1 seed(s)"
    assert accuracy_summary(RunResult()) == ""


def test_progress_bar_shows_latest_validation_and_log_file_gets_the_result(tmp_path):
    """The bar's postfix holds the latest validation accuracy and loss; the result lines reach a
    log file attached to the package's logger (as ``run`` attaches log.txt) but not the console."""
    from microcircuit.cli import _LogFileOnly
    from microcircuit.experiment import Experiment, RunOptions
    from tests.conftest import CIRCUITS, build

    spec = build(CIRCUITS / "bars_le.yaml", ("parameters.t_pres=5", "protocol.0.epochs=2",
                                              "protocol.0.validate_every=1", "record=[]"))
    experiment = Experiment(spec, RunOptions(n_seeds=2, progress=False))
    log_file = logging.FileHandler(tmp_path / "log.txt")
    console = logging.StreamHandler()
    console.addFilter(_LogFileOnly())
    shown = []
    console.emit = lambda record: shown.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("microcircuit")
    logger.addHandler(log_file)
    logger.addHandler(console)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        experiment.run()
    finally:
        logger.removeHandler(log_file)
        logger.removeHandler(console)
        logger.setLevel(level)
        log_file.close()
    assert "val acc" in experiment._bar.postfix and "loss" in experiment._bar.postfix
    text = (tmp_path / "log.txt").read_text()
    assert "test accuracy per seed:" in text and "over 2 seed(s)" in text
    assert not any("test accuracy" in line for line in shown)


def test_describe_shows_learning_rates_as_applied_and_draws_names(tmp_path, capsys):
    """bars_le: eta_up = [5, 1], eta_ip = 2 with eta_scale 1/t_pres = 1/100."""
    out = tmp_path / "circuit.png"
    assert cli(["describe", "--draw", str(out)]) == 0
    text = capsys.readouterr().out
    assert "learning rates as applied" in text
    assert "train      (eta_scale 1/t_pres = 1/100): up_1=0.05, up_2=0.01, ip_1=0.02" in text
    assert "test       (eta_scale 1): nothing learns" in text
    assert out.stat().st_size > 10_000


def test_learning_projections_are_the_plastic_ones_with_a_learning_rule():
    from microcircuit.circuit import Circuit
    from tests.conftest import CIRCUITS, build

    circuit = Circuit(build(CIRCUITS / "bars_le.yaml"))
    assert circuit.learning_projections() == ["up_1", "up_2", "ip_1"]
    train = circuit.spec.protocol[0]
    assert circuit.learning_rates(train, applied=False)["up_1"] == 5.0
    assert circuit.learning_rates(train)["up_1"] == 5.0 / 100
