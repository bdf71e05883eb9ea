# Validation stage: the test split evaluated with the final model (results/validation/), one rule per
# paper figure (results/figures/<name>.{pdf,png,txt}), the summary and a one-page report.

rule evaluate_test:
    input:
        catalog=catalog_dataset(),
        model=MODEL_FILES,
        code=code_inputs("../scripts/validation_evaluate.py"),
    output:
        table=f"{VAL}/test_stars.parquet",
    params:
        colours=config["validation"]["colours"],
        train=config["train"],
    log:
        f"{RESULTS}/logs/validation/evaluate_test.log",
    benchmark:
        f"{RESULTS}/benchmarks/validation/evaluate_test.tsv"
    resources:
        mem_mb=lambda wc, input: 4000 + 4 * int(input.size_mb),
        runtime="1h",
    conda:
        "../../envs/validation.yaml"
    script:
        "../scripts/validation_evaluate.py"


rule evaluate_comparison:
    input:
        catalog=catalog_dataset(),
        model=compare_inputs(),
        code=code_inputs("../scripts/validation_evaluate.py"),
    output:
        table=f"{VAL}/compare/test_stars.parquet",
    params:
        colours=config["validation"]["colours"],
        train=config["train"],
        compare=compare_config(),
    log:
        f"{RESULTS}/logs/validation/evaluate_comparison.log",
    resources:
        mem_mb=lambda wc, input: 4000 + 4 * int(input.size_mb),
        runtime="1h",
    conda:
        "../../envs/validation.yaml"
    script:
        "../scripts/validation_evaluate.py"


rule validation_summary:
    input:
        table=f"{VAL}/test_stars.parquet",
        model=MODEL_FILES,
        training=f"{MODEL}/summary.json",  # the convergence verdict
        catalog=catalog_dataset(),
        code=code_inputs("../scripts/validation_summary.py"),
        **({"truth": truth_table()} if truth_table() else {}),
        **({"compare_table": f"{VAL}/compare/test_stars.parquet"} if compare_config() else {}),
    output:
        summary=f"{VAL}/summary.json",
        provenance=f"{VAL}/provenance.json",
    params:
        colours=config["validation"]["colours"],
        compare=compare_config(),
        appendix_b=config["validation"]["figures"].get("nonlinearity", {}).get("appendix_b", {}),
    log:
        f"{RESULTS}/logs/validation/summary.log",
    resources:
        mem_mb=lambda wc, input: 2000 + 3 * int(input.size_mb),
        runtime="30m",
    conda:
        "../../envs/validation.yaml"
    script:
        "../scripts/validation_summary.py"


for _name in FIGURES:

    rule:
        name:
            f"figure_{_name}"
        input:
            **figure_inputs(_name),
            code=figure_code(_name),
        output:
            pdf=f"{FIG}/{_name}.pdf",
            png=report(
                f"{FIG}/{_name}.png",
                caption="../report/figure.rst",
                category="Figures",
                labels={"figure": _name, "reproduces": FIGURES[_name].paper},
            ),
            caption=f"{FIG}/{_name}.txt",
        params:
            name=_name,
            paper=FIGURES[_name].paper,
            options=config["validation"]["figures"].get(_name, {}),
            dpi=config["validation"]["dpi"],
            # only the figures that draw the comparison see it, so turning it on reruns only them
            compare_label=(
                (compare_config() or {}).get("label") if "compare_table" in FIGURES[_name].inputs else None
            ),
        log:
            f"{RESULTS}/logs/figures/{_name}.log",
        benchmark:
            f"{RESULTS}/benchmarks/figures/{_name}.tsv"
        resources:
            mem_mb=lambda wc, input: 2000 + 4 * int(input.size_mb),
            runtime="30m",
        conda:
            "../../envs/validation.yaml"
        script:
            "../scripts/validation_figure.py"


rule validation_report:
    input:
        summary=f"{VAL}/summary.json",
        table1=f"{CAT}/table1.md",
        captions=expand(f"{FIG}/{{name}}.txt", name=FIGURES),
        pngs=expand(f"{FIG}/{{name}}.png", name=FIGURES),
        pdfs=expand(f"{FIG}/{{name}}.pdf", name=FIGURES),
        code=code_inputs("../scripts/validation_report.py"),
    output:
        report=f"{VAL}/report.md",
    log:
        f"{RESULTS}/logs/validation/report.log",
    conda:
        "../../envs/validation.yaml"
    script:
        "../scripts/validation_report.py"
