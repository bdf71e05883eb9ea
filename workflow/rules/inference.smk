# Photometric inference (paper Eq. 19): stars through the trained model partition by partition
# (results/inference/stars/healpix_<order>=<pixel>/), one job per group of partitions, a summary and figures.
# Paths and helpers: common.smk.

rule infer_group:
    input:
        model=MODEL_FILES,
        stars=inference_source(),
        code=code_inputs("../scripts/infer_group.py"),
        **inference_maps(),
    output:
        manifest=f"{INF}/groups/{{group}}.json",
    params:
        options={k: v for k, v in INF_CFG.items() if k not in ("enabled", "baseline_stars")},
        out_dir=f"{INF}/stars",
        **INFERENCE_PARAMS,
    wildcard_constraints:
        group=r"\d+",
    log:
        f"{RESULTS}/logs/inference/group_{{group}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/inference/group_{{group}}.tsv"
    threads: INF_CFG["threads"]
    resources:
        mem_mb=INF_CFG["mem_mb"],
        runtime=INF_CFG["runtime"],
        gpu=INF_CFG["gpu"],  # the SLURM profile turns 1 into a GPU request
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/infer_group.py"


rule inference_summary:
    input:
        manifests=expand(f"{INF}/groups/{{group}}.json", group=range(INF_CFG["groups"])),
        model=MODEL_FILES,
        code=code_inputs("../scripts/inference_summary.py"),
        **({"truth": inference_truth()} if inference_truth() else {}),
        **inference_maps(),
    output:
        summary=f"{INF}/summary.json",
        accuracy=f"{INF}/accuracy.csv",
    params:
        options=INF_CFG,
        **INFERENCE_PARAMS,
    log:
        f"{RESULTS}/logs/inference/summary.log",
    resources:
        mem_mb=INF_CFG["mem_mb"],
        runtime=60,
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/inference_summary.py"


rule inference_figures:
    input:
        manifests=rules.inference_summary.input.manifests,
        model=MODEL_FILES,
        bayestar=dustmap_inputs(config)["bayestar"],
        code=code_inputs("../scripts/inference_figures.py"),
        **({"truth": inference_truth()} if inference_truth() else {}),
    output:
        expand(f"{FIG}/{{name}}.{{ext}}", name=INFERENCE_FIGURES, ext=("pdf", "png", "txt")),
    params:
        bayestar_file=INFERENCE_PARAMS["bayestar_file"],
        dpi=config["validation"]["dpi"],
    log:
        f"{RESULTS}/logs/inference/figures.log",
    resources:
        mem_mb=INF_CFG["mem_mb"],
        runtime=60,
    conda:
        "../../envs/validation.yaml"
    script:
        "../scripts/inference_figures.py"
