# Archive queries (backend: remote): one rule per archive table, fetching it from its service in
# chunks through the resumable raw cache (remote.cache_dir) into resources/archives/<table>.parquet.
# They run on the submitting node (localrules: compute nodes often have no network) with a few
# requests at a time per service (remote.services.<service>.max_concurrent).

for _table in REMOTE_TABLES:

    rule:
        name:
            f"fetch_{_table}"
        input:
            **{up: str(table_path({**config, "backend": "remote"}, up)) for up in remote_upstream(_table)},
            code=package_code("remote"),
        output:
            table=str(table_path({**config, "backend": "remote"}, _table)),
        localrule: True  # archive queries need the network of the submitting node
        params:
            table=_table,
            remote=config.get("remote", {}),
        log:
            f"results/logs/archives/fetch_{_table}.log",
        resources:
            mem_mb=8000,
            runtime="12h",
        conda:
            "../../envs/catalog.yaml"
        script:
            "../scripts/fetch_archive.py"
