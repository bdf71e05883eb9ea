# Training stage: the data-driven stellar model fitted to the catalog (results/model/).


rule train_model:
    input:
        catalog=catalog_dataset(),
        checked=f"{CAT}/check.json",  # an invalid catalog stops the run before training
        code=code_inputs("../scripts/train_model.py"),
    output:
        model=f"{MODEL}/model.keras",
        normalisation=f"{MODEL}/normalisation.json",
        history=f"{MODEL}/history.csv",
        rounds=f"{MODEL}/rounds.csv",
        reddening=f"{MODEL}/reddening.parquet",
        test_predictions=f"{MODEL}/test_predictions.parquet",
        summary=f"{MODEL}/summary.json",
        provenance=f"{MODEL}/provenance.json",
    params:
        options=config["train"],
    log:
        f"{RESULTS}/logs/train_model.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_model.tsv"
    threads: 2
    resources:
        mem_mb=lambda wc, input: 4000 + 6 * int(input.size_mb),
        runtime="4h",
        gpu=1,  # the SLURM profile turns this into a GPU request; without a GPU TensorFlow uses the CPU
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/train_model.py"
