# HATS copies (ddstars.hatsio; docs/hats.md): the training catalog and the inference results as HATS collections
# (adaptive HEALPix partitions, _healpix_29, a margin cache) that LSDB opens. The Hive datasets stay what every
# other rule reads; these are written after them and rerun only when they change.


rule hats_catalog:
    input:
        catalog=catalog_dataset(),
        code=code_inputs("../scripts/hats_write.py"),
    output:
        collection=directory(f"{CAT}/hats"),
        report=f"{CAT}/hats.json",
    params:
        name="stars",
        description="ddstars training catalog (Green et al. 2021 method; columns: docs/catalog.md)",
        options={k: v for k, v in config["hats"].items() if k not in ("enabled", "threads")},
    threads: config["hats"]["threads"]
    log:
        f"{RESULTS}/logs/hats/catalog.log",
    benchmark:
        f"{RESULTS}/benchmarks/hats/catalog.tsv"
    resources:
        mem_mb=8000,
        runtime="2h",
    conda:
        "../../envs/catalog.yaml"
    script:
        "../scripts/hats_write.py"


rule hats_inference:
    input:
        manifests=rules.inference_summary.input.manifests,
        code=code_inputs("../scripts/hats_write.py"),
    output:
        collection=directory(f"{INF}/hats"),
        report=f"{INF}/hats.json",
    params:
        name="stars",
        description="ddstars photometric inference (paper Eq. 19; columns: docs/inference.md)",
        options={k: v for k, v in config["hats"].items() if k not in ("enabled", "threads")},
    threads: config["hats"]["threads"]
    log:
        f"{RESULTS}/logs/hats/inference.log",
    benchmark:
        f"{RESULTS}/benchmarks/hats/inference.tsv"
    resources:
        mem_mb=8000,
        runtime="2h",
    conda:
        "../../envs/catalog.yaml"
    script:
        "../scripts/hats_write.py"
