# The built-in simulated sky: archive tables, dust maps and the truth table, all seeded.


rule simulate_dustmaps:
    input:
        code=code_inputs("../scripts/simulate_dustmaps.py"),
    output:
        sfd_ngp=f"{SIM}/dustmaps/sfd/SFD_dust_4096_ngp.fits",
        sfd_sgp=f"{SIM}/dustmaps/sfd/SFD_dust_4096_sgp.fits",
        bayestar=f"{SIM}/dustmaps/bayestar/bayestar2019.h5",
    params:
        seed=config["simulate"]["seed"],
        galaxy=config["simulate"]["galaxy"],
        dust=config["simulate"]["dust"],
    log:
        "results/logs/simulate_dustmaps.log",
    benchmark:
        "results/benchmarks/simulate_dustmaps.tsv"
    resources:
        mem_mb=2000,
        runtime="30m",
    conda:
        "../../envs/simulate.yaml"
    script:
        "../scripts/simulate_dustmaps.py"


rule simulate_sky:
    input:
        code=code_inputs("../scripts/simulate_sky.py"),
    output:
        **{name: f"{SIM}/archives/{name}.parquet" for name in SIM_TABLES},
        truth=f"{SIM}/truth.parquet",
        manifest=f"{SIM}/manifest.json",
    params:
        simulate=config["simulate"],
    log:
        "results/logs/simulate_sky.log",
    benchmark:
        "results/benchmarks/simulate_sky.tsv"
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime="2h",
    conda:
        "../../envs/simulate.yaml"
    script:
        "../scripts/simulate_sky.py"


rule simulate_release_dr3:
    input:
        **{name: f"{SIM}/archives/{name}.parquet" for name in SIM_DR3_INPUTS},
        truth=f"{SIM}/truth.parquet",
        code=code_inputs("../scripts/simulate_release.py"),
    output:
        **{name: f"{SIM}/archives/{name}.parquet" for name in SIM_DR3_TABLES},
        truth_dr3=f"{SIM}/truth_dr3.parquet",
    params:
        seed=config["simulate"]["seed"],
    log:
        "results/logs/simulate_release_dr3.log",
    benchmark:
        "results/benchmarks/simulate_release_dr3.tsv"
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime="1h",
    conda:
        "../../envs/simulate.yaml"
    script:
        "../scripts/simulate_release.py"


rule simulate_photometric:
    input:
        code=code_inputs("../scripts/simulate_photometric.py"),
    output:
        **{name: f"{SIM}/photometric/archives/{name}.parquet" for name in PHOT_TABLES},
        truth=f"{SIM}/photometric/truth.parquet",
        manifest=f"{SIM}/photometric/manifest.json",
    params:
        simulate=config["simulate"],
        sample=simulated_sample(),
    log:
        "results/logs/simulate_photometric.log",
    benchmark:
        "results/benchmarks/simulate_photometric.tsv"
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime="2h",
    conda:
        "../../envs/simulate.yaml"
    script:
        "../scripts/simulate_photometric.py"


rule summarize_simulation:
    input:
        truth=rules.simulate_sky.output.truth,
        manifest=rules.simulate_sky.output.manifest,
        sfd_ngp=rules.simulate_dustmaps.output.sfd_ngp,
        bayestar=rules.simulate_dustmaps.output.bayestar,
        code=code_inputs("../scripts/summarize_simulation.py"),
    output:
        summary="results/simulation/summary.json",
        coverage="results/simulation/coverage.csv",
        provenance="results/simulation/provenance.json",
    params:
        simulate=config["simulate"],
    log:
        "results/logs/summarize_simulation.log",
    conda:
        "../../envs/simulate.yaml"
    script:
        "../scripts/summarize_simulation.py"
