"""Dust-map provisioning: good, missing, wrong-checksum, corrupt and undersized files; no ~/.dustmapsrc."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import h5py
import pytest

from ddstars.dustmaps_provision import (
    FILES,
    DustMapProvisionError,
    check,
    file_digests,
    main,
    provision,
    rule_inputs,
)
from ddstars.errors import ConfigError, DataError, DustMapMissingError
from ddstars.simulate.dust import DustModel, write_bayestar_like, write_sfd_like

NGP, SGP, BAYESTAR = (spec.name for spec in FILES)
FLATIRON = "https://users.flatironinstitute.org/~apricewhelan/data/surveys/mwdust/maps/"


@pytest.fixture(scope="module")
def tiny_maps(tmp_path_factory):
    """Simulated SFD-like (16 x 16) and Bayestar-like (nside 2) maps, written once."""
    out = tmp_path_factory.mktemp("tiny_maps")
    model = DustModel(n_modes=4)
    write_sfd_like(out / "sfd", model, n_pix=16)
    write_bayestar_like(
        out / "bayestar" / BAYESTAR, model, nside=2, n_samples=2, dm_edges=[4.0, 8.0, 12.0, 16.0], child_levels=1
    )
    return out


@pytest.fixture
def maps(tiny_maps, tmp_path):
    """A private copy of the tiny maps (tests damage them)."""
    shutil.copytree(tiny_maps, tmp_path / "maps")
    root = tmp_path / "maps"
    return {"sfd_dir": root / "sfd", "bayestar": root / "bayestar" / BAYESTAR}


def _check(maps, **kw):
    kw.setdefault("require_full_size", False)
    return check(maps["sfd_dir"], maps["bayestar"], **kw)


def test_good_simulated_maps_pass_with_matching_checksums(maps, tmp_path):
    ngp = maps["sfd_dir"] / NGP
    checksums = {
        NGP: "md5:" + file_digests(ngp)["md5"],
        BAYESTAR: "sha256:" + file_digests(maps["bayestar"], ("sha256",))["sha256"],
    }
    report = provision(maps["sfd_dir"], maps["bayestar"], checksums, require_full_size=False, smoke_query=True)
    assert report["ok"] and not report["require_full_size"]
    files = report["files"]
    assert set(files) == {NGP, SGP, BAYESTAR}
    assert all(e["present"] and e["structure_ok"] and not e["problems"] for e in files.values())
    assert files[NGP]["checksum_ok"] is True and files[NGP]["path"] == str(ngp.resolve())
    assert files[BAYESTAR]["checksum_ok"] is True and set(files[BAYESTAR]["checksum"]) == {"md5", "sha256"}
    assert files[SGP]["checksum_ok"] is None and len(files[SGP]["checksum"]["md5"]) == 32
    assert files[BAYESTAR]["structure"]["samples"] == [files[BAYESTAR]["structure"]["pixel_info"][0], 2, 4]
    json.dumps(report)  # the report is plain JSON


def test_missing_file_says_what_to_download_and_where(maps):
    (maps["sfd_dir"] / SGP).unlink()
    bayestar = maps["bayestar"].parent / "elsewhere" / BAYESTAR
    with pytest.raises(DataError) as info:
        provision(maps["sfd_dir"], bayestar, require_full_size=False)
    err = info.value
    assert isinstance(err, DustMapProvisionError) and isinstance(err, DustMapMissingError)
    msg = str(err)
    target = str((maps["sfd_dir"] / SGP).resolve())
    assert f"put it at: {target}" in msg
    assert FLATIRON + SGP in msg and "doi:10.7910/DVN/EWCNL5" in msg
    assert f"md5sum {target}" in msg
    assert f"put it at: {bayestar.resolve()}" in msg and "https://doi.org/10.7910/DVN/2EJ9TX" in msg
    assert NGP not in msg  # the good file is not listed
    assert err.report["files"][SGP]["problems"] == ["missing"] and not err.report["ok"]


def test_wrong_md5_names_file_expected_and_found(maps):
    wrong = "0" * 32
    found = file_digests(maps["bayestar"])["md5"]
    with pytest.raises(DataError) as info:
        provision(maps["sfd_dir"], maps["bayestar"], {BAYESTAR: f"md5:{wrong}"}, require_full_size=False)
    msg = str(info.value)
    assert f"* {BAYESTAR} at {maps['bayestar'].resolve()}" in msg
    assert f"expected {wrong}, found {found}" in msg
    assert f"md5sum {maps['bayestar'].resolve()}   (must print {wrong})" in msg
    entry = info.value.report["files"][BAYESTAR]
    assert entry["checksum_ok"] is False and entry["structure_ok"] is True


def test_checksum_config_is_validated(maps):
    with pytest.raises(ConfigError, match="not 'md5:<32 hex digits>'"):
        _check(maps, checksums={NGP: "md5:abc"})
    with pytest.raises(ConfigError, match="names no dust-map file"):
        _check(maps, checksums={"SFD_dust_4096_npg.fits": "md5:" + "0" * 32})


def test_truncated_fits_is_a_structure_problem(maps):
    path = maps["sfd_dir"] / NGP
    path.write_bytes(path.read_bytes()[:4000])
    entry = _check(maps)["files"][NGP]
    assert entry["structure_ok"] is False
    assert any("truncated" in p for p in entry["problems"]), entry["problems"]


def test_not_a_fits_file_is_a_structure_problem(maps):
    (maps["sfd_dir"] / SGP).write_bytes(b"<html>challenge</html>" * 200)  # what Dataverse sends scripts
    with pytest.raises(DataError, match=r"structure: does not open as FITS"):
        provision(maps["sfd_dir"], maps["bayestar"], require_full_size=False)


def test_fits_with_wrong_pole_is_a_structure_problem(maps):
    shutil.copy(maps["sfd_dir"] / NGP, maps["sfd_dir"] / SGP)
    entry = _check(maps)["files"][SGP]
    assert "structure: LAM_NSGP = 1, expected -1 for SFD_dust_4096_sgp.fits" in entry["problems"]


def test_truncated_hdf5_is_a_structure_problem(maps):
    path = maps["bayestar"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    entry = _check(maps)["files"][BAYESTAR]
    assert entry["structure_ok"] is False
    assert any(p.startswith("structure: does not read as HDF5") for p in entry["problems"]), entry["problems"]


def test_hdf5_without_samples_is_a_structure_problem(maps):
    with h5py.File(maps["bayestar"], "a") as f:  # like the best_fit-only copy of ztf-viewer PR #614
        del f["samples"]
        del f["pixel_info"].attrs["DM_bin_edges"]
    with pytest.raises(DataError, match=r"structure: lacks dataset\(s\) /samples"):
        provision(maps["sfd_dir"], maps["bayestar"], require_full_size=False)


def test_full_size_check_flags_small_simulated_maps(maps):
    assert _check(maps, require_full_size=False)["ok"]
    report = _check(maps, require_full_size=True)
    assert not report["ok"]
    for name in (NGP, SGP):
        problems = report["files"][name]["problems"]
        assert any(p.startswith("size ") and "outside the expected 67,108,864" in p for p in problems)
        assert "structure: image is 16 x 16, not the full 4096 x 4096 SFD map" in problems[-1]
    assert report["files"][BAYESTAR]["problems"][0].startswith("size ")
    assert report["files"][BAYESTAR]["structure_ok"] is True


def test_rule_inputs_list_real_maps_only_once_present(maps, tmp_path):
    dm = {"sfd_dir": str(maps["sfd_dir"]), "bayestar_file": str(tmp_path / "absent.h5")}
    sfd = [str(maps["sfd_dir"] / NGP), str(maps["sfd_dir"] / SGP)]
    assert rule_inputs({"backend": "simulated", "dustmaps": dm}) == {"sfd": sfd, "bayestar": dm["bayestar_file"]}
    (maps["sfd_dir"] / SGP).unlink()
    assert rule_inputs({"backend": "remote", "dustmaps": dm}) == {"sfd": sfd[:1], "bayestar": []}


def test_cli_prints_report_and_exit_status(maps, capsys):
    args = ["--sfd-dir", str(maps["sfd_dir"]), "--bayestar", str(maps["bayestar"])]
    assert main([*args, "--simulated"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(args) == 1  # full size required: the tiny maps fail
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ok"] is False
    assert "Dust maps not ready: 3 of 3" in captured.err
    assert main([*args, "--simulated", "--checksums", json.dumps({NGP: "md5:x"})]) == 2


def test_dustmaps_use_leaves_home_untouched(maps, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    code = textwrap.dedent(
        f"""
        import warnings
        warnings.simplefilter("error")
        from ddstars.dustmaps_provision import dustmaps_config_env, provision
        env = dustmaps_config_env({str(tmp_path / "run")!r})
        provision({str(maps["sfd_dir"])!r}, {str(maps["bayestar"])!r}, require_full_size=False, smoke_query=True)
        from dustmaps.config import config
        config["scratch"] = 1  # dustmaps saves on every set: must go to the per-run file
        print(env["DUSTMAPS_CONFIG_FNAME"])
        """
    )
    env = {**os.environ, "HOME": str(home)}
    env.pop("DUSTMAPS_CONFIG_FNAME", None)
    res = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    fname = tmp_path / "run" / "dustmapsrc.json"
    assert res.stdout.split() == [str(fname.resolve())]
    assert json.loads(fname.read_text())["scratch"] == 1
    assert not (home / ".dustmapsrc").exists()


def test_missing_simulated_map_says_how_to_make_it_again(maps):
    """The simulated sky's maps (no size check) are regenerated, not downloaded."""
    (maps["sfd_dir"] / SGP).unlink()
    with pytest.raises(DustMapProvisionError) as info:
        provision(maps["sfd_dir"], maps["bayestar"], require_full_size=False, simulated=True)
    msg = str(info.value)
    assert "rule simulate_dustmaps writes them; nothing is to be downloaded" in msg
    assert f"rm -f {(maps['sfd_dir'] / SGP).resolve()} && make run" in msg
    assert "doi:" not in msg and "curl" not in msg
