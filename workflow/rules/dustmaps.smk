# Dust maps: check the SFD and Bayestar19 files before the reddening prior reads them (ARCHIVES.md §9).
# The workflow never downloads them (dustmaps' fetch() is broken since 2026); a missing or bad file
# stops the run with what to download, where to put it and how to verify it.
from ddstars.dustmaps_provision import rule_inputs as dustmap_inputs


rule provision_dustmaps:
    input:
        # Simulated maps always (simulate_dustmaps makes them); real ones only once they exist.
        sfd=dustmap_inputs(config)["sfd"],
        bayestar=dustmap_inputs(config)["bayestar"],
        code=code_inputs("../scripts/provision_dustmaps.py"),
    output:
        report="results/dustmaps/provision.json",
    params:
        # Taken from the config, not the input: a missing real map is not an input (see above).
        sfd_dir=lambda wc: config["dustmaps"]["sfd_dir"],
        bayestar_file=lambda wc: config["dustmaps"]["bayestar_file"],
        checksums=config["dustmaps"].get("checksums", {}),
        # The simulated maps are small: skip the size checks, keep structure and checksums.
        require_full_size=config["backend"] != "simulated",
    log:
        "results/logs/dustmaps/provision_dustmaps.log",
    benchmark:
        "results/benchmarks/dustmaps/provision_dustmaps.tsv"
    resources:
        mem_mb=6000,  # the dustmaps read (smoke query) loads the Bayestar19 pixel table and best fit
        runtime="30m",
    conda:
        "../../envs/catalog.yaml"
    script:
        "../scripts/provision_dustmaps.py"
