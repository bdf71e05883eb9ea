"""Check the dust-map files before the workflow uses them, and say how to provision missing ones.

The SFD and Bayestar19 maps are large (2 x ~64 MiB and ~693 MiB) and the ``dustmaps`` package's own
``fetch()`` no longer works (since 2026 Harvard Dataverse answers scripts with a JavaScript
challenge; ARCHIVES.md §9), so the workflow never downloads them. Instead:

* :func:`check` looks for each expected file (:data:`FILES`) at the configured paths and reports,
  per file, whether it is present, its size, its checksum (computed, and expected where configured
  under ``dustmaps.checksums``) and whether its structure is what ``dustmaps`` reads
  (FITS: a square ZEA image with LAM_NSGP; HDF5: /pixel_info with DM_bin_edges, /samples, /best_fit).
* :func:`provision` runs :func:`check` and raises :class:`DustMapProvisionError` (a
  :class:`~ddstars.errors.DataError`) whose message says, for each missing or bad file, what to
  download (mirrors and DOIs), where to put it (absolute path) and how to verify it (``md5sum``).

No published checksums are built in: they are not known offline, so they come from the config
(``dustmaps.checksums``: ``{"SFD_dust_4096_ngp.fits": "md5:<32 hex>", ...}``). Without one, the
structure check stands in. The sizes below are estimates (ARCHIVES.md §9), so a file whose configured
checksum matches is accepted even if its size falls outside the expected range.

``python -m ddstars.dustmaps_provision --sfd-dir D --bayestar F [--checksums JSON]`` prints the
report as JSON and exits with status 1 (and the instructions on stderr) when a file is missing or bad.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ddstars.config import get as config_value
from ddstars.dustmaps_io import (
    BAYESTAR_DATASETS,
    CONFIG_ENV,
    SFD_FILES,
    configure_dustmaps,
    query_bayestar,
    query_sfd,
)
from ddstars.errors import ConfigError, DataError, DustMapMissingError

MIB = 1 << 20
SFD_N_PIX = 4096
SFD_DATA_BYTES = SFD_N_PIX * SFD_N_PIX * 4  # one float32 image
BAYESTAR_MIB = 693  # snad-space/ztf-viewer PR #614 (ARCHIVES.md §9)
PIXEL_INFO_FIELDS = ("nside", "healpix_index", "DM_reliable_min", "DM_reliable_max", "converged")
CHECKSUM_RE = re.compile(r"^(md5:[0-9a-f]{32}|sha256:[0-9a-f]{64})$")
ALGORITHMS = ("md5", "sha256")
SMOKE_LB_DEG = {
    "sfd": ((90.0, 30.0), (0.0, 60.0), (180.0, -45.0), (270.0, -60.0)),  # both caps
    "bayestar": ((90.0, 30.0), (0.0, 60.0)),  # Galactic (l, b) inside the Bayestar19 footprint (dec > -30)
}
SFD_MIRRORS = (
    "https://users.flatironinstitute.org/~apricewhelan/data/surveys/mwdust/maps/{name}",
    "http://sncosmo.github.io/data/dust/ (file {name})",
)


@dataclass(frozen=True)
class DustMapFile:
    """One file the reddening prior needs, and where to get it."""

    name: str
    """Relative name (file name under sfd_dir, or the canonical Bayestar19 file name)."""
    kind: str
    """``"sfd"`` or ``"bayestar"``."""
    doi: str
    mirrors: tuple[str, ...]
    size_range: tuple[int, int]
    """Inclusive [min, max] size in bytes of the full map (an estimate; see ``size_note``)."""
    size_note: str
    description: str
    pole: int = 0
    """LAM_NSGP of an SFD file (+1 north, -1 south); 0 for Bayestar."""

    @property
    def doi_url(self) -> str:
        return f"https://doi.org/{self.doi}"

    def sources(self) -> list[str]:
        return [m.format(name=self.name) for m in self.mirrors]


def _sfd_file(name: str, pole: int) -> DustMapFile:
    return DustMapFile(
        name=name,
        kind="sfd",
        doi="10.7910/DVN/EWCNL5",
        mirrors=SFD_MIRRORS,
        # 4096^2 float32 plus FITS headers and padding: estimated, not measured (ARCHIVES.md §9).
        size_range=(SFD_DATA_BYTES, SFD_DATA_BYTES + MIB),
        size_note="about 64 MiB (an estimate from the image size, ARCHIVES.md §9)",
        description="SFD E(B-V), 4096 x 4096 float32 FITS image, ZEA projection, "
        f"LAM_NSGP = {pole:+d} ({'north' if pole > 0 else 'south'} Galactic pole)",
        pole=pole,
    )


FILES: tuple[DustMapFile, ...] = (
    _sfd_file(SFD_FILES[0], +1),
    _sfd_file(SFD_FILES[1], -1),
    DustMapFile(
        name="bayestar2019.h5",
        kind="bayestar",
        doi="10.7910/DVN/2EJ9TX",
        mirrors=(),  # no Zenodo or other copy is known (ARCHIVES.md §9)
        size_range=(int(0.95 * BAYESTAR_MIB * MIB), int(1.05 * BAYESTAR_MIB * MIB)),
        size_note=f"about {BAYESTAR_MIB} MiB (snad-space/ztf-viewer PR #614; the 148 MiB "
        "best_fit-only copy made there lacks /samples and is not enough)",
        description="Bayestar19 HDF5: /pixel_info (nside, healpix_index, DM_reliable_min/max, "
        "converged; attribute DM_bin_edges), /samples (n_pix, n_samples, n_dm), /best_fit (n_pix, n_dm)",
    ),
)
"""The expected files: SFD north and south caps, then Bayestar19."""


class DustMapProvisionError(DataError, DustMapMissingError):
    """A dust-map file is missing or bad; the message says what to download and where to put it."""


# ---------------------------------------------------------------------- configuration
def dustmaps_config_env(tmpdir) -> dict[str, str]:
    """Point ``dustmaps`` at ``<tmpdir>/dustmapsrc.json`` for this run; return the env to pass on.

    A thin wrapper of :func:`ddstars.dustmaps_io.configure_dustmaps` (which writes the JSON, sets
    ``DUSTMAPS_CONFIG_FNAME`` in ``os.environ`` and re-points an already imported
    ``dustmaps.config``): importing or using ``dustmaps`` afterwards never reads or writes
    ``~/.dustmapsrc``. The returned ``{"DUSTMAPS_CONFIG_FNAME": path}`` is for subprocesses.
    """
    return {CONFIG_ENV: str(configure_dustmaps(tmpdir))}


def parse_checksums(checksums: dict[str, str] | None, names: list[str] | None = None) -> dict[str, tuple[str, str]]:
    """``{name: "md5:<hex>"}`` -> ``{name: ("md5", "<hex>")}``; ConfigError on a malformed entry.

    ``names`` lists the keys accepted (unknown keys are typos and raise ConfigError).
    """
    out: dict[str, tuple[str, str]] = {}
    for name, value in (checksums or {}).items():
        text = str(value).strip().lower()
        if not CHECKSUM_RE.match(text):
            raise ConfigError(
                f"dustmaps.checksums[{name!r}] = {value!r} is not 'md5:<32 hex digits>' or 'sha256:<64 hex digits>'"
            )
        if names is not None and name not in names:
            raise ConfigError(
                f"dustmaps.checksums has key {name!r}, which names no dust-map file; use one of {', '.join(names)}"
            )
        algo, digest = text.split(":", 1)
        out[name] = (algo, digest)
    return out


# ---------------------------------------------------------------------- checks
def file_digests(path, algorithms=("md5",), block: int = 1 << 20) -> dict[str, str]:
    """Hex digests of a file in one pass, e.g. ``{"md5": "..."}``."""
    hashes = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as f:
        while chunk := f.read(block):
            for h in hashes.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashes.items()}


def _warning_problems(caught) -> list[str]:
    return list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))


def check_sfd_structure(path, spec: DustMapFile, require_full_size: bool) -> tuple[list[str], dict[str, Any]]:
    """Problems with an SFD FITS file's layout (empty list: fine) and what was found."""
    from astropy.io import fits

    problems: list[str] = []
    info: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                hdu = hdul[0]
                h = hdu.header
                shape = tuple(int(h.get(f"NAXIS{i}", 0)) for i in range(1, int(h.get("NAXIS", 0)) + 1))
                info.update(shape=list(shape[::-1]), bitpix=h.get("BITPIX"))
                info.update(ctype=[h.get("CTYPE1"), h.get("CTYPE2")], lam_nsgp=h.get("LAM_NSGP"))
                if len(shape) != 2 or shape[0] != shape[1] or shape[0] < 2:
                    problems.append(f"primary HDU is not a square 2-D image (NAXIS = {list(shape[::-1])})")
                elif require_full_size and shape[0] != SFD_N_PIX:
                    problems.append(
                        f"image is {shape[0]} x {shape[1]}, not the full {SFD_N_PIX} x {SFD_N_PIX} SFD map "
                        "(a simulated or reduced map?)"
                    )
                ctype = [str(h.get("CTYPE1", "")), str(h.get("CTYPE2", ""))]
                galactic = ctype[0].startswith("GLON") and ctype[1].startswith("GLAT")
                if not (galactic and all(c.endswith("-ZEA") for c in ctype)):
                    problems.append(f"WCS is not Galactic ZEA (CTYPE1, CTYPE2 = {ctype}; expected GLON-ZEA, GLAT-ZEA)")
                if "LAM_NSGP" not in h:
                    problems.append("header keyword LAM_NSGP is missing")
                elif int(h["LAM_NSGP"]) != spec.pole:
                    problems.append(f"LAM_NSGP = {h['LAM_NSGP']}, expected {spec.pole:+d} for {spec.name}")
                if not problems:
                    data = hdu.data  # reads the image: fails on a truncated file
                    if data is None or data.shape != shape[::-1]:
                        problems.append("image data could not be read in full")
                    elif not np.isfinite(data[:: max(1, shape[0] // 64), :: max(1, shape[0] // 64)]).any():
                        problems.append("image holds no finite values")
        except Exception as err:  # astropy raises several types for a file that is not FITS
            problems.append(f"does not open as FITS: {type(err).__name__}: {err}")
    problems.extend(_warning_problems(caught))
    return problems, info


def check_bayestar_structure(path) -> tuple[list[str], dict[str, Any]]:
    """Problems with a Bayestar19-layout HDF5 file (empty list: fine) and what was found.

    Reads only the pixel table, the DM edges and the first and last rows of /samples and /best_fit
    (which fails on a truncated file), never the whole map. Bayestar19 is multi-resolution and no exact
    shape is known offline, so the full-size check is the file size alone.
    """
    import h5py

    problems: list[str] = []
    info: dict[str, Any] = {}
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in BAYESTAR_DATASETS if not isinstance(f.get(k), h5py.Dataset)]
            if missing:
                problems.append(f"lacks dataset(s) {', '.join('/' + k for k in missing)}")
                return problems, info
            pix, samples, best = f["pixel_info"], f["samples"], f["best_fit"]
            info.update(pixel_info=list(pix.shape), samples=list(samples.shape), best_fit=list(best.shape))
            fields = pix.dtype.names or ()
            lacking = [k for k in PIXEL_INFO_FIELDS if k not in fields]
            if lacking:
                problems.append(f"/pixel_info lacks field(s) {', '.join(lacking)}")
            if "DM_bin_edges" not in pix.attrs:
                problems.append("/pixel_info lacks attribute DM_bin_edges")
                n_dm = None
            else:
                n_dm = int(np.size(pix.attrs["DM_bin_edges"]))
                info["n_dm"] = n_dm
            n_pix = pix.shape[0] if pix.ndim == 1 else None
            if n_pix is None or n_pix == 0:
                problems.append(f"/pixel_info is not a non-empty 1-D table (shape {list(pix.shape)})")
            if samples.ndim != 3 or (n_pix and samples.shape[0] != n_pix) or (n_dm and samples.shape[2] != n_dm):
                problems.append(
                    f"/samples has shape {list(samples.shape)}, expected (n_pix={n_pix}, n_samples, n_dm={n_dm})"
                )
            if best.ndim != 2 or (n_pix and best.shape[0] != n_pix) or (n_dm and best.shape[1] != n_dm):
                problems.append(f"/best_fit has shape {list(best.shape)}, expected (n_pix={n_pix}, n_dm={n_dm})")
            if not problems:
                pix[-1:]  # noqa: B018  (reads: fails on a truncated file)
                for ds in (samples, best):
                    ds[:1], ds[-1:]  # noqa: B018
                if "nside" in fields:
                    nsides = np.unique(pix["nside"])
                    info["nside"] = [int(n) for n in nsides]
    except Exception as err:  # h5py raises OSError, KeyError, ... on damaged files
        problems.append(f"does not read as HDF5: {type(err).__name__}: {err}")
    return problems, info


def _check_file(spec: DustMapFile, path: Path, expected: tuple[str, str] | None, require_full_size: bool) -> dict:
    entry: dict[str, Any] = {
        "name": spec.name,
        "kind": spec.kind,
        "path": str(path),
        "present": path.is_file(),
        "size": None,
        "expected_size": list(spec.size_range) if require_full_size else None,
        "checksum": {},
        "expected_checksum": f"{expected[0]}:{expected[1]}" if expected else None,
        "checksum_ok": None,
        "structure_ok": None,
        "structure": {},
        "problems": [],
        "notes": [],
    }
    problems: list[str] = entry["problems"]
    if not entry["present"]:
        problems.append("missing" if not path.exists() else "not a regular file")
        return entry
    entry["size"] = size = path.stat().st_size
    algorithms = ("md5",) if not expected or expected[0] == "md5" else ("md5", expected[0])
    entry["checksum"] = digests = file_digests(path, algorithms)
    if expected:
        entry["checksum_ok"] = digests[expected[0]] == expected[1]
        if not entry["checksum_ok"]:
            problems.append(f"{expected[0]} checksum mismatch: expected {expected[1]}, found {digests[expected[0]]}")
    if require_full_size:
        lo, hi = spec.size_range
        if not lo <= size <= hi:
            text = f"size {size:,} bytes is outside the expected {lo:,}-{hi:,} bytes; expected {spec.size_note}"
            if entry["checksum_ok"]:
                entry["notes"].append(text + "; accepted because the configured checksum matches")
            else:
                problems.append(text)
    if spec.kind == "sfd":
        structure, info = check_sfd_structure(path, spec, require_full_size)
    else:
        structure, info = check_bayestar_structure(path)
    entry["structure"] = info
    entry["structure_ok"] = not structure
    problems.extend(f"structure: {p}" for p in structure)
    return entry


def _smoke_query(kind: str, sfd_dir: Path, bayestar_file: Path) -> list[str]:
    """Read the map through dustmaps (ddstars.dustmaps_io) at a few sightlines; problems found."""
    l_deg = np.array([lb[0] for lb in SMOKE_LB_DEG[kind]])
    b_deg = np.array([lb[1] for lb in SMOKE_LB_DEG[kind]])
    try:
        if kind == "sfd":
            values = query_sfd(sfd_dir, l_deg, b_deg)
        else:
            values = query_bayestar(bayestar_file, l_deg, b_deg, 1.0, mode="best", max_samples=1)
    except Exception as err:
        return [f"dustmaps could not read the map: {type(err).__name__}: {err}"]
    if not np.all(np.isfinite(values)):
        return [f"dustmaps query at Galactic (l, b) = {list(SMOKE_LB_DEG[kind])} gave {values.tolist()}"]
    return []


def check(
    sfd_dir,
    bayestar_file,
    checksums: dict[str, str] | None = None,
    require_full_size: bool = True,
    smoke_query: bool = False,
) -> dict:
    """Report on the dust-map files at ``sfd_dir`` (SFD ngp/sgp FITS) and ``bayestar_file``.

    ``checksums`` maps a file name (``SFD_dust_4096_ngp.fits``, ``SFD_dust_4096_sgp.fits``,
    ``bayestar2019.h5`` or the configured Bayestar file's own name) to ``"md5:<hex>"`` or
    ``"sha256:<hex>"``. ``require_full_size=False`` (the simulated maps) skips the size check and the
    4096 x 4096 requirement but keeps the structure and checksum checks. ``smoke_query=True`` also
    reads each map through ``dustmaps`` at two sightlines (configure ``dustmaps`` first, e.g. with
    :func:`dustmaps_config_env`).

    Returns ``{"ok", "require_full_size", "sfd_dir", "bayestar_file", "files": {name: entry}}``; each
    entry has path, present, size, expected_size, checksum (computed: md5, plus sha256 if one is
    expected), expected_checksum, checksum_ok, structure_ok, structure, problems and notes.
    """
    sfd_dir = Path(sfd_dir).expanduser().resolve()
    bayestar_file = Path(bayestar_file).expanduser().resolve()
    by_name = {spec.name: spec for spec in FILES}
    aliases = {bayestar_file.name: "bayestar2019.h5"} if bayestar_file.name not in by_name else {}
    parsed = parse_checksums(checksums, names=[*by_name, *aliases])
    expected = {aliases.get(k, k): v for k, v in parsed.items()}
    files = {}
    for spec in FILES:
        path = sfd_dir / spec.name if spec.kind == "sfd" else bayestar_file
        files[spec.name] = _check_file(spec, path, expected.get(spec.name), require_full_size)
    if smoke_query:
        for kind in ("sfd", "bayestar"):
            entries = [e for e in files.values() if e["kind"] == kind]
            if all(e["present"] and not e["problems"] for e in entries):
                found = _smoke_query(kind, sfd_dir, bayestar_file)
                for e in entries:
                    e["problems"].extend(f"read: {p}" for p in found)
    return {
        "ok": all(not e["problems"] for e in files.values()),
        "require_full_size": bool(require_full_size),
        "sfd_dir": str(sfd_dir),
        "bayestar_file": str(bayestar_file),
        "files": files,
    }


# ---------------------------------------------------------------------- instructions
def instructions(report: dict, simulated: bool = False) -> str:
    """What to download, where to put it and how to verify it, for each missing or bad file; for the simulated
    sky's maps (``simulated``), how to make them again instead."""
    bad = [e for e in report["files"].values() if e["problems"]]
    if not bad:
        return "All dust-map files are present and pass their checks."
    if simulated:
        paths = " ".join(e["path"] for e in bad)
        return "\n".join(
            [
                f"Simulated dust maps not usable: {len(bad)} of {len(report['files'])} file(s) missing or bad "
                "(backend 'simulated': rule simulate_dustmaps writes them; nothing is to be downloaded):",
                *(f"* {e['path']}: {'; '.join(e['problems'])}" for e in bad),
                f"Make them again: rm -f {paths} && make run",
            ]
        )
    specs = {spec.name: spec for spec in FILES}
    lines = [
        f"Dust maps not ready: {len(bad)} of {len(report['files'])} file(s) missing or bad. The workflow does not "
        "download them (dustmaps' fetch() fails since 2026: Harvard Dataverse answers scripts with a "
        "JavaScript challenge; ARCHIVES.md §9). Provision them by hand, then rerun:",
    ]
    for e in bad:
        spec = specs[e["name"]]
        path = e["path"]
        lines.append("")
        lines.append(f"* {spec.name} at {path}:")
        lines.extend(f"    problem:   {p}" for p in e["problems"])
        lines.append(f"    put it at: {path}")
        sources = spec.sources()
        if sources:
            lines.append(f"    download:  {sources[0]}")
            lines.extend(f"               {s}" for s in sources[1:])
            lines.append(f"               or, in a web browser, Harvard Dataverse doi:{spec.doi} ({spec.doi_url})")
            url = sources[0]
            lines.append(f"    e.g.:      mkdir -p {Path(path).parent} && curl -fL -o {path} {url}")
        else:
            lines.append(
                f"    download:  in a web browser, Harvard Dataverse doi:{spec.doi} ({spec.doi_url}), file "
                f"{spec.name}; no mirror is known (no Zenodo copy; gregreen/dustmaps#54, #72)"
            )
            lines.append(f"    e.g.:      mkdir -p {Path(path).parent} && mv ~/Downloads/{spec.name} {path}")
        lines.append(f"    expected:  {spec.description}; {spec.size_note}")
        want = e["expected_checksum"]
        if want:
            algo, digest = want.split(":", 1)
            tool = "md5sum" if algo == "md5" else "sha256sum"
            lines.append(f"    verify:    {tool} {path}   (must print {digest})")
        else:
            lines.append(
                f"    verify:    md5sum {path}   (no checksum configured: check it against the source, then pin it "
                f'in config/config.yaml as dustmaps.checksums: {{{spec.name}: "md5:<hex>"}})'
            )
    return "\n".join(lines)


def provision(
    sfd_dir,
    bayestar_file,
    checksums: dict[str, str] | None = None,
    require_full_size: bool = True,
    smoke_query: bool = True,
    simulated: bool = False,
) -> dict:
    """:func:`check` the files; return the report if all are good, else raise DustMapProvisionError
    (``simulated``: the simulated sky's maps, which the workflow makes again rather than downloads).

    The error message is :func:`instructions` (what to download, where to put it, how to verify
    it); the report is attached as the exception's ``report`` attribute.
    """
    report = check(sfd_dir, bayestar_file, checksums, require_full_size, smoke_query)
    if not report["ok"]:
        err = DustMapProvisionError(instructions(report, simulated=simulated))
        err.report = report  # type: ignore[attr-defined]
        raise err
    return report


# ---------------------------------------------------------------------- workflow
def rule_inputs(config: dict) -> dict[str, Any]:
    """Dust-map inputs of the workflow's rules: ``{"sfd": [ngp, sgp], "bayestar": path}``.

    With the simulated backend the files are always listed (rule simulate_dustmaps makes them). Real
    maps are listed only once they exist (``"bayestar"`` is ``[]`` until then), so that a missing file
    does not stop Snakemake while it builds the DAG but reaches rule provision_dustmaps, which says how
    to provision it.
    """
    simulated = config_value(config, "backend") == "simulated"
    dm = config["dustmaps"]
    sfd = [f"{dm['sfd_dir']}/{name}" for name in SFD_FILES]
    return {
        "sfd": [f for f in sfd if simulated or Path(f).is_file()],
        "bayestar": dm["bayestar_file"] if simulated or Path(dm["bayestar_file"]).is_file() else [],
    }


# ---------------------------------------------------------------------- CLI
def _load_checksums(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    path = Path(text)
    raw = path.read_text() if path.is_file() else text
    try:
        value = json.loads(raw)
    except ValueError as err:
        raise ConfigError(f"--checksums is neither a JSON object nor a JSON file: {err}") from err
    if not isinstance(value, dict):
        raise ConfigError("--checksums must be a JSON object {file name: 'md5:<hex>'}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ddstars.dustmaps_provision",
        description="Check the SFD and Bayestar19 dust-map files; print a JSON report, and on a missing or bad "
        "file what to download and where to put it (exit status 1).",
    )
    parser.add_argument("--sfd-dir", required=True, help="folder holding SFD_dust_4096_{ngp,sgp}.fits")
    parser.add_argument("--bayestar", required=True, help="Bayestar19 HDF5 file (bayestar2019.h5)")
    parser.add_argument(
        "--checksums",
        help='JSON object or JSON file: {"SFD_dust_4096_ngp.fits": "md5:<hex>", ...}',
    )
    parser.add_argument(
        "--simulated",
        action="store_true",
        help="small simulated maps: skip the size checks (structure and checksums still checked)",
    )
    parser.add_argument(
        "--smoke-query",
        metavar="DIR",
        help="also read the maps through dustmaps, with its config file written in DIR",
    )
    args = parser.parse_args(argv)
    try:
        checksums = _load_checksums(args.checksums)
        if args.smoke_query:
            dustmaps_config_env(args.smoke_query)
        report = check(args.sfd_dir, args.bayestar, checksums, not args.simulated, bool(args.smoke_query))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, sort_keys=True))
    if not report["ok"]:
        print(instructions(report), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
