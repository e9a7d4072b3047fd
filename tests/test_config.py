"""Configuration: profile validation errors name the file, the key and what was expected; the CLI
turns configuration errors into exit code 2 with that message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import PROJECT, SEEDS, make_settings
from pipeline.cli import main
from pipeline.config import ConfigError, load_profile
from pipeline.settings import build_settings


def write_profile(tmp_path, text: str, name: str = "profile.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_local_profile_is_valid(tmp_path):
    settings = make_settings(tmp_path, [str(SEEDS / "*.txt")])
    assert settings.runner == "DirectRunner"
    assert settings.inputs == (str(SEEDS / "*.txt"),)
    assert settings.read["max_bytes"] > 0 and 0 < settings.language["min_confidence"] <= 1


def test_overrides_merge_into_sections(tmp_path):
    settings = make_settings(tmp_path, read={"max_bytes": 123})
    assert settings.read["max_bytes"] == 123
    assert settings.read["max_title_chars"] == load_profile("local")["read"]["max_title_chars"]


@pytest.mark.parametrize("text, fragments", [
    ("extends: local\nreed: {max_bytes: 1}\n", ["unknown key(s) ['reed']", "allowed:"]),
    ("extends: local\nread: {max_bytez: 1}\n", ["read: unknown key(s) ['max_bytez']", "max_bytes"]),
    ("extends: local\nread: {max_bytes: lots}\n", ["read.max_bytes", "expected a whole number", "'lots'"]),
    ("extends: local\nworkers: '2'\n", ["workers", "expected a whole number"]),
    ("extends: local\nworkers: 0\n", ["workers", "must be >= 1"]),
    ("extends: local\nlanguage: {min_confidence: 1.5}\n", ["language.min_confidence", "must be <= 1"]),
    ("extends: local\nlanguage: {detector: cld3}\n", ["language.detector", "must be one of", "'cld3'"]),
    ("extends: local\nlanguage: {second_opinion: cld3}\n", ["language.second_opinion", "must be one of", "'cld3'"]),
    ("extends: local\nrunner: TurboRunner\n", ["runner", "must be one of", "DirectRunner"]),
    ("extends: local\nread: 5\n", ["read", "expected a mapping, got int"]),
    ("extends: local\ndedup: {num_perm: 128, bands: 7}\n", ["dedup.bands", "must divide dedup.num_perm (128)", "7"]),
    ("extends: local\ndedup: {bands: 7}\n", ["dedup.bands", "must divide"]),  # num_perm from the parent
    ("extends: local\nextends_typo: x\n", ["unknown key(s) ['extends_typo']"]),
    ("read: [1, 2\n", ["not valid YAML"]),
    ("- a\n- b\n", ["top level must be a mapping, got list"]),
    ("extends: no-such-profile\n", ["extends", "config file not found: 'no-such-profile'"]),
    ("extends: 5\n", ["extends", "expected a non-empty string"]),
])
def test_bad_profiles_fail_clearly(tmp_path, text, fragments):
    path = write_profile(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        build_settings(path, {"output": str(tmp_path / "out")})
    message = str(info.value)
    assert "profile.yaml" in message
    for fragment in fragments:
        assert fragment in message


def test_profile_that_extends_itself_fails_clearly(tmp_path):
    write_profile(tmp_path, f"extends: {tmp_path / 'b.yaml'}\n", "a.yaml")
    write_profile(tmp_path, f"extends: {tmp_path / 'a.yaml'}\n", "b.yaml")
    with pytest.raises(ConfigError, match="extend each other in a loop"):
        load_profile(str(tmp_path / "a.yaml"))


def test_missing_profile():
    with pytest.raises(ConfigError, match="config file not found: 'nope'"):
        build_settings("nope")


@pytest.mark.parametrize("overrides, fragment", [
    ({"run_id": "has space"}, "run id 'has space' may only contain"),
    ({"output": ""}, "output: expected a non-empty string"),
    ({"workers": 100}, "workers: must be <= 64"),
])
def test_bad_overrides(tmp_path, overrides, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        build_settings("local", {"output": str(tmp_path), **overrides})


def test_nothing_to_read(tmp_path):
    path = write_profile(tmp_path, "extends: local\ninput: null\n")
    with pytest.raises(ConfigError, match="nothing to read"):
        build_settings(path, {"output": str(tmp_path)})


# -- the command line -------------------------------------------------------------

def test_cli_missing_input_glob_exits_2(tmp_path, capsys):
    pattern = str(tmp_path / "nowhere" / "*.txt")
    code = main(["run", "--input", pattern, "--output", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"newsbeam: configuration error: input {pattern!r} matches no file" in err
    assert not (tmp_path / "out").exists()


def test_cli_directory_input_exits_2_with_a_hint(tmp_path, capsys):
    assert main(["run", "--input", str(SEEDS), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "is a directory; give a file pattern such as" in err


def test_cli_output_that_is_a_file_exits_2(tmp_path, capsys):
    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    assert main(["run", "--input", str(SEEDS / "*.txt"), "--output", str(blocker)]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


def test_cli_bad_profile_exits_2(tmp_path, capsys):
    path = write_profile(tmp_path, "extends: local\nread: {max_bytes: -1}\n")
    code = main(["run", "--profile", path, "--output", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "newsbeam: configuration error:" in err and "read.max_bytes: must be >= 0, got -1" in err


def test_cli_bad_option_value_exits_2_from_argparse(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--runner", "TurboRunner"])
    assert info.value.code == 2
    assert "invalid choice: 'TurboRunner'" in capsys.readouterr().err


def test_cli_subprocess_reports_config_errors_on_stderr(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", "--profile", str(tmp_path / "missing.yaml")],
                          cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "configuration error: config file not found" in done.stderr
    assert "Traceback" not in done.stderr
