# Archive queries (backend: remote): per archive table, a plan, one job per chunk and an assembly.
#
#   plan_<table>         checkpoint: the table's chunks (ids, request digests) from the config and the upstream
#                        tables, in <archive_cache>/chunks/<table>/plan/
#   fetch_chunk_<table>  one chunk into the resumable raw cache (remote.cache_dir); a chunk the cache already
#                        holds with the same request is not fetched again; marker <...>/done/<chunk>.json
#   fetch_<table>        the chunks assembled into resources/archives/<table>.parquet
#
# They run on the submitting node (localrules: compute nodes often have no network). Each fetch_chunk job holds
# one unit of its service's resource remote_<service> (e.g. remote_gaia); Snakemake runs at most
# remote.services.<service>.max_concurrent of them at once, so no job waits on a busy service while holding a
# core. The client enforces the same limit per request, across processes, by lock files in the cache: to allow
# more at once, raise max_concurrent (a larger --resources remote_<service> alone only starts jobs that wait).
# How many jobs run at once on that node in all is --cores (or local-cores in the SLURM profile).
from ddstars.remote.services import SAMPLE_TABLES, chunk_dir, remote_config, request_params, spec_for, split_name


def service_resource(table):
    """The Snakemake resource that counts the running queries of ``table``'s service (remote_<service>), for the
    service the table is queried from (remote.tables.<table>.service may move it)."""
    return f"remote_{spec_for(table, config).service}"


# One resource per service, limited to its max_concurrent unless --resources sets it.
for _service, _settings in remote_config(config)["services"].items():
    workflow.global_resources.setdefault(f"remote_{_service}", int(_settings["max_concurrent"]))


def chunk_root(table):
    """<archive_cache>/chunks/<table> (<archive_cache>/photometric/chunks/<table> for the photometric sample's):
    the plan and the chunk markers of a remote archive table."""
    return chunk_dir(config, table)


def rule_suffix(table):
    """``table`` as it appears in names of jobs and logs (photometric/gaia_source -> photometric_gaia_source)."""
    return "_".join(part for part in split_name(table) if part)


def chunk_markers(table):
    """The chunk markers of ``table`` that its plan lists (known once the plan_<table> checkpoint has run)."""
    from ddstars.remote.fetch import read_plan  # here, not at parse time: it imports healpy, astropy, pyvo

    plan_dir = getattr(checkpoints, f"plan_{rule_suffix(table)}").get().output.plan
    return [str(chunk_root(table) / "done" / f"{cid}.json") for cid in read_plan(plan_dir)["chunks"]]


for _table in REMOTE_TABLES + list(SAMPLE_TABLES):

    checkpoint:
        name:
            f"plan_{rule_suffix(_table)}"
        input:
            **remote_upstream(_table),
            code=code_inputs("../scripts/plan_archive.py"),
        output:
            plan=directory(str(chunk_root(_table) / "plan")),
        localrule: True
        params:
            table=_table,
            request=request_params(_table, config),  # only what changes the requests (not retries, slots)
        log:
            f"{RESULTS}/logs/archives/plan_{rule_suffix(_table)}.log",
        conda:
            "../../envs/catalog.yaml"
        script:
            "../scripts/plan_archive.py"

    rule:
        name:
            f"fetch_chunk_{rule_suffix(_table)}"
        input:
            plan=str(chunk_root(_table) / "plan"),
            code=code_inputs("../scripts/fetch_chunk.py"),
        output:
            marker=str(chunk_root(_table) / "done" / "{chunk}.json"),
        wildcard_constraints:
            chunk=r"[A-Za-z0-9][A-Za-z0-9_.\-]*",
        localrule: True  # archive queries need the network of the submitting node
        params:
            table=_table,
        resources:
            **{service_resource(_table): 1},  # at most max_concurrent jobs per service at once
        log:
            f"{RESULTS}/logs/archives/{_table}/{{chunk}}.log",
        conda:
            "../../envs/catalog.yaml"
        script:
            "../scripts/fetch_chunk.py"

    rule:
        name:
            f"fetch_{rule_suffix(_table)}"
        input:
            plan=str(chunk_root(_table) / "plan"),
            markers=lambda wc, t=_table: chunk_markers(t),
            code=code_inputs("../scripts/fetch_archive.py"),
        output:
            table=remote_file(_table),
        localrule: True  # a concatenation; queueing it on the cluster would only add a wait between tables
        params:
            table=_table,
        log:
            f"{RESULTS}/logs/archives/fetch_{rule_suffix(_table)}.log",
        resources:
            mem_mb=8000,
        conda:
            "../../envs/catalog.yaml"
        script:
            "../scripts/fetch_archive.py"
