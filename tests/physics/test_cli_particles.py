"""`textdiffusion particles`, run in-process with small N: the JSON summary, the files, and user errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from textdiffusion.cli.particles import particles

KEYS = {
    "true_diffusion",
    "estimated_diffusion",
    "naive_diffusion",
    "acceptance_rate",
    "density_pvalue",
}


def run_cli(argv: list[str]) -> None:
    """Run the CLI as `textdiffusion ...` does, through `textdiffusion.cli.main` when it lists
    `particles`; otherwise through the same tyro call with this one subcommand."""
    from textdiffusion.cli import commands, main

    if "particles" in commands():
        main(argv)
        return
    import sys

    import tyro

    from textdiffusion.cli.common import CLIError

    try:
        tyro.extras.subcommand_cli_from_dict(
            {"particles": particles},
            prog="textdiffusion",
            args=argv,
            config=(tyro.conf.OmitArgPrefixes,),
        )
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _json_run(tmp_path, capsys, *extra: str) -> dict:
    run_cli(["particles", "--device", "cpu", "--out", str(tmp_path), "--json", *extra])
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object on stdout
    return json.loads(out)


def test_json_summary_and_files(tmp_path, capsys):
    summary = _json_run(
        tmp_path, capsys, "--n", "1500", "--steps", "300", "--noise", "0.002", "--seed", "3"
    )
    assert KEYS <= summary.keys()
    assert summary["true_diffusion"] == 1e-3
    # relative SE of the estimate here is ~1.1% (1500 particles × 300 steps), so 5% is > 4 SE
    assert abs(summary["estimated_diffusion"] / 1e-3 - 1) < 0.05
    assert 0.88 < summary["acceptance_rate"] < 0.91  # (1 - 2s/sqrt(2π))³ = 0.897 in the unit box
    assert 0 < summary["density_pvalue"] <= 1 and summary["density_dof"] > 1
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert json.loads((tmp_path / "config.json").read_text())["n"] == 1500
    data = np.load(tmp_path / "trajectories.npz")
    assert data["true_positions"].shape == (301, 256, 3)
    assert data["observed_positions"].shape == (301, 256, 3)
    assert data["final_positions"].shape == (1500, 3)
    noise = data["observed_positions"] - data["true_positions"]
    assert abs(noise.std() - 0.002) < 0.002 * 4 * np.sqrt(1 / (2 * noise.size))  # σ kept apart
    assert (data["true_positions"] >= 0).all() and (data["true_positions"] <= 1).all()
    for name in ("msd.png", "trajectories.png", "density.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_trajectory(tmp_path, capsys):
    args = ("--n", "200", "--steps", "50", "--no-plots", "--gravity", "1.0", "--record-every", "5")
    a = _json_run(tmp_path / "a", capsys, *args, "--seed", "11")
    b = _json_run(tmp_path / "b", capsys, *args, "--seed", "11")
    c = _json_run(tmp_path / "c", capsys, *args, "--seed", "12")
    assert a["estimated_diffusion"] == b["estimated_diffusion"]
    za, zb, zc = (np.load(tmp_path / k / "trajectories.npz") for k in "abc")
    assert za["true_positions"].shape == (11, 200, 3)
    assert np.array_equal(za["true_positions"], zb["true_positions"])
    assert np.array_equal(za["observed_positions"], zb["observed_positions"])
    assert not np.array_equal(za["true_positions"], zc["true_positions"])
    assert not (tmp_path / "a" / "msd.png").exists()
    assert c["seed"] == 12


def test_sphere_with_potentials_and_hard_spheres(tmp_path, capsys):
    summary = _json_run(
        tmp_path, capsys, "--container", "sphere", "--n", "400", "--steps", "120", "--gravity", "2",
        "--trap", "1", "--temperature", "0.5", "--hard-sphere-radius", "0.01", "--no-plots",
    )  # fmt: skip
    assert summary["container"] == "sphere" and summary["hard_sphere_radius"] == 0.01
    assert 0 < summary["acceptance_rate"] < 0.95
    assert summary["density_pvalue"] is not None


def test_plain_output_and_config_line(tmp_path, capsys):
    run_cli(["particles", "--n", "300", "--steps", "60", "--device", "cpu", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert "estimated" in captured.out and "acceptance rate" in captured.out
    assert '"n": 300' in captured.err  # the resolved config, printed for the record
    assert (tmp_path / "density.png").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--n", "0"], "--n"),
        (["--diffusion", "-1"], "--diffusion"),
        (["--noise", "-0.1"], "--noise"),
        (["--steps", "3", "--max-lag", "4"], "--max-lag"),
        (["--hard-sphere-radius", "0.2"], "packing fraction"),
        (["--box", "0.2", "--steps", "20"], "far enough from the walls"),
    ],
)
def test_user_errors_exit_2_naming_the_problem(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exc:
        run_cli(
            ["particles", "--n", "500", "--device", "cpu", "--out", str(tmp_path), "--json", *flags]
        )
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_help_documents_the_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(["particles", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--n",
        "--gravity",
        "--trap",
        "--hard-sphere-radius",
        "--container",
        "--record-particles",
    ):
        assert flag in text
    flat = " ".join(text.replace("│", " ").split())  # undo the help's line wrapping
    assert "240 MB" in flat and "not stored" in flat  # why the full trajectory is not kept
