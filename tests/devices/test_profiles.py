"""Device profiles: every shipped one validates and cites its figures; user files load, bad ones fail clearly."""

from pathlib import Path

import pytest
import yaml

from edgemap.devices import catalogue
from edgemap.devices.profile import load_profile
from edgemap.errors import EdgemapError

SHIPPED = sorted(catalogue.SHIPPED_DIR.glob("*.yaml"))
REQUIRED = {"host", "rpi4", "rpi5", "jetson-orin-nano", "intel-n100", "snapdragon-7gen3", "stm32h7"}


def test_the_catalogue_has_the_required_devices():
    assert REQUIRED <= {p.stem for p in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_profile_validates_and_every_figure_cites_a_source(path):
    prof = catalogue.load_named(path)
    figures = [prof.memory.ram_bytes, prof.memory.bandwidth_bytes_per_s, prof.memory.storage_bytes, prof.memory.cache_bytes,
               prof.power.idle_w, prof.power.active_w]
    for u in prof.compute_units:
        figures += [u.clock_hz, *u.peak_ops.values()]
        assert u.peak_ops["fp32"].value > 0
    for f in figures:
        assert f.basis in ("datasheet", "measured", "estimated") and len(f.source) > 10
    assert prof.power.active_w.value >= prof.power.idle_w.value


def test_stm32_is_microcontroller_sized():
    p = catalogue.resolve("stm32h7")
    assert p.memory.ram_bytes.value == 2**20 and p.memory.storage_bytes.value == 2 * 2**20
    assert p.memory.weights_in_flash and p.unit().clock_hz.value == 480e6


def _valid() -> dict:
    return yaml.safe_load((catalogue.SHIPPED_DIR / "rpi4.yaml").read_text())


def test_user_directory_shadows_and_extends_the_catalogue(tmp_path, monkeypatch):
    mine = _valid() | {"name": "mydev", "description": "my board"}
    (tmp_path / "mydev.yaml").write_text(yaml.safe_dump(mine))
    (tmp_path / "rpi4.yaml").write_text(yaml.safe_dump(_valid() | {"description": "my own rpi4"}))
    monkeypatch.setenv(catalogue.ENV_VAR, str(tmp_path))
    assert catalogue.resolve("mydev").description == "my board"
    assert catalogue.resolve("rpi4").description == "my own rpi4"
    assert "mydev" in [p.name for p in catalogue.list_profiles()]


def test_a_profile_loads_from_a_path(tmp_path):
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(_valid()))
    assert catalogue.resolve(str(path)).name == "rpi4"


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["memory"].pop("ram_bytes"), "memory.ram_bytes"),
    (lambda d: d["compute_units"][0]["peak_ops"].update(bf12={"value": 1, "basis": "estimated", "source": "xyz"}),
     "compute_units.0.peak_ops"),
    (lambda d: d["power"]["idle_w"].update(basis="guessed"), "power.idle_w.basis"),
    (lambda d: d["memory"]["ram_bytes"].update(value=-1), "memory.ram_bytes.value"),
    (lambda d: d["compute_units"][0]["clock_hz"].pop("source"), "compute_units.0.clock_hz.source"),
])
def test_a_malformed_profile_is_one_line_naming_file_and_field(tmp_path, mutate, field):
    data = _valid()
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(EdgemapError) as err:
        load_profile(path)
    msg = str(err.value)
    assert str(path) in msg and f"field {field}" in msg and "\n" not in msg


def test_invalid_yaml_and_unknown_names_are_clear(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(EdgemapError, match="broken.yaml: not valid YAML at line"):
        load_profile(bad)
    with pytest.raises(EdgemapError, match="unknown device 'nosuch'; known devices: .*rpi4"):
        catalogue.resolve("nosuch")
    with pytest.raises(EdgemapError, match="has no compute unit 'npu'"):
        catalogue.resolve("rpi4").unit("npu")


def test_file_name_must_match_profile_name(tmp_path, monkeypatch):
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(_valid()))
    monkeypatch.setenv(catalogue.ENV_VAR, str(tmp_path))
    with pytest.raises(EdgemapError, match="does not match the file name 'other'"):
        catalogue.resolve("other")
