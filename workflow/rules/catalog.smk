# Catalog stage: archive tables -> per-survey cleaning -> cross-match -> zero-point offsets, photometry,
# reddening prior -> HEALPix-partitioned catalog (results/catalog/stars/) -> Table 1 and its schema check.
# The archive tables come from the configured backend (archive_table); rules do not know which.

for _survey, _table in SURVEY_ARCHIVE.items():

    rule:
        name:
            f"clean_{_survey}"
        input:
            archive=archive_table(_table),
            code=code_inputs("../scripts/catalog_clean.py"),
        output:
            table=f"{CAT}/clean/{_survey}.parquet",
            rejected=f"{CAT}/clean/{_survey}.rejected.parquet",
            counts=f"{CAT}/clean/{_survey}.counts.json",
        params:
            survey=_survey,
            options=clean_params(_survey),
        log:
            f"{RESULTS}/logs/catalog/clean_{_survey}.log",
        benchmark:
            f"{RESULTS}/benchmarks/catalog/clean_{_survey}.tsv"
        resources:
            mem_mb=4000,
            runtime="30m",
        conda:
            "../../envs/catalog.yaml"
        script:
            "../scripts/catalog_clean.py"


rule crossmatch_spectra:
    input:
        **{s: f"{CAT}/clean/{s}.parquet" for s in SPECTRO_SURVEYS},
        gaia=f"{CAT}/clean/gaia.parquet",
        gaia_rejected=f"{CAT}/clean/gaia.rejected.parquet",
        code=code_inputs("../scripts/catalog_crossmatch.py"),
    output:
        table=f"{CAT}/matched_spectra.parquet",
        report=f"{CAT}/crossmatch.json",
    params:
        options={"match_radius_arcsec": config["catalog"]["match_radius_arcsec"]},
    log:
        f"{RESULTS}/logs/catalog/crossmatch_spectra.log",
    benchmark:
        f"{RESULTS}/benchmarks/catalog/crossmatch_spectra.tsv"
    resources:
        mem_mb=6000,
        runtime="30m",
    conda:
        "../../envs/catalog.yaml"
    script:
        "../scripts/catalog_crossmatch.py"


rule zero_point_offsets:
    input:
        matched=rules.crossmatch_spectra.output.table,
        code=code_inputs("../scripts/catalog_offsets.py"),
    output:
        f"{CAT}/offsets.json",
    params:
        options=config["catalog"]["offsets"],
    log:
        f"{RESULTS}/logs/catalog/zero_point_offsets.log",
    benchmark:
        f"{RESULTS}/benchmarks/catalog/zero_point_offsets.tsv"
    conda:
        "../../envs/catalog.yaml"
    script:
        "../scripts/catalog_offsets.py"


rule match_photometry:
    input:
        matched=rules.crossmatch_spectra.output.table,
        gaia=f"{CAT}/clean/gaia.parquet",
        ps1=f"{CAT}/clean/ps1.parquet",
        ps1_rejected=f"{CAT}/clean/ps1.rejected.parquet",
        tmass=f"{CAT}/clean/tmass.parquet",
        tmass_rejected=f"{CAT}/clean/tmass.rejected.parquet",
        unwise=f"{CAT}/clean/unwise.parquet",
        **{f"{s}_link": archive_table(t) for s, t in REL.links().items()},  # the best-neighbour tables
        code=code_inputs("../scripts/catalog_photometry.py"),
    output:
        table=f"{CAT}/photometry.parquet",
        report=f"{CAT}/photometry.json",
    params:
        options={"match_radius_arcsec": config["catalog"]["match_radius_arcsec"]} | release_param(),
    log:
        f"{RESULTS}/logs/catalog/match_photometry.log",
    benchmark:
        f"{RESULTS}/benchmarks/catalog/match_photometry.tsv"
    resources:
        mem_mb=6000,
        runtime="30m",
    conda:
        "../../envs/catalog.yaml"
    script:
        "../scripts/catalog_photometry.py"


rule photometric_input:
    input:
        **photometric_tables(),
        code=code_inputs("../scripts/catalog_photometric_input.py"),
    output:
        table=f"{CAT}/photometric_input.parquet",
        report=f"{CAT}/photometric_input.json",
    params:
        options={k: config["catalog"][k] for k in CLEAN_OPTIONS["photometric"]},
    log:
        f"{RESULTS}/logs/catalog/photometric_input.log",
    resources:
        mem_mb=4000,
        runtime="1h",
    conda:
        "../../envs/catalog.yaml"
    script:
        "../scripts/catalog_photometric_input.py"


rule reddening_prior:
    input:
        matched=rules.crossmatch_spectra.output.table,
        gaia=f"{CAT}/clean/gaia.parquet",
        sfd=dustmap_inputs(config)["sfd"],
        bayestar=dustmap_inputs(config)["bayestar"],
        provision=rules.provision_dustmaps.output.report,  # the maps checked (a changed map reruns the prior)
        code=code_inputs("../scripts/catalog_reddening.py"),
    output:
        f"{CAT}/reddening_prior.parquet",
    params:
        sfd_dir=lambda wc: config["dustmaps"]["sfd_dir"],
        options=config["catalog"]["reddening"],
    log:
        f"{RESULTS}/logs/catalog/reddening_prior.log",
    benchmark:
        f"{RESULTS}/benchmarks/catalog/reddening_prior.tsv"
    resources:
        mem_mb=6000,
        runtime="1h",
    conda:
        "../../envs/catalog.yaml"
    script:
        "../scripts/catalog_reddening.py"


if not external_catalog():

    rule build_catalog:
        input:
            matched=rules.crossmatch_spectra.output.table,
            crossmatch=rules.crossmatch_spectra.output.report,
            offsets=rules.zero_point_offsets.output[0],
            gaia=f"{CAT}/clean/gaia.parquet",
            photometry=rules.match_photometry.output.table,
            reddening=rules.reddening_prior.output[0],
            provision=rules.provision_dustmaps.output.report,  # the maps read, recorded in the provenance
            counts=[f"{CAT}/clean/{s}.counts.json" for s in SPECTRO_SURVEYS],
            schema=CATALOG_SCHEMA,
            code=code_inputs("../scripts/catalog_build.py"),
        output:
            catalog=directory(f"{CAT}/stars"),
            report=f"{CAT}/build.json",
            provenance=f"{CAT}/provenance.json",
        params:
            surveys=SPECTRO_SURVEYS,
            provenance={k: config[k] for k in ("backend", "dustmaps", "catalog")},
            options={
                k: config["catalog"][k]
                for k in ("healpix_order", "row_group_size", "survey_priority", "parallax_min_snr", "split")
            },
        log:
            f"{RESULTS}/logs/catalog/build_catalog.log",
        benchmark:
            f"{RESULTS}/benchmarks/catalog/build_catalog.tsv"
        resources:
            mem_mb=8000,
            runtime="1h",
        conda:
            "../../envs/catalog.yaml"
        script:
            "../scripts/catalog_build.py"

else:

    rule import_catalog:
        input:
            catalog=external_catalog(),
            checked=f"{CAT}/check.json",  # a catalog that fails its schema is not imported
            schema=CATALOG_SCHEMA,
            code=code_inputs("../scripts/catalog_import.py"),
        output:
            catalog=directory(f"{CAT}/stars"),
            report=f"{CAT}/import.json",
        params:
            options={
                k: config["catalog"][k]
                for k in ("healpix_order", "row_group_size", "split", "strict_photometry")
            },
        log:
            f"{RESULTS}/logs/catalog/import_catalog.log",
        benchmark:
            f"{RESULTS}/benchmarks/catalog/import_catalog.tsv"
        resources:
            mem_mb=8000,
            runtime="1h",
        conda:
            "../../envs/catalog.yaml"
        script:
            "../scripts/catalog_import.py"


rule table1:
    input:
        catalog=catalog_dataset(),
        checked=f"{CAT}/check.json",
        code=code_inputs("../scripts/catalog_table1.py"),
    output:
        csv=report(f"{CAT}/table1.csv", caption="../report/table1.rst", category="Table 1"),
        md=f"{CAT}/table1.md",
    log:
        f"{RESULTS}/logs/catalog/table1.log",
    benchmark:
        f"{RESULTS}/benchmarks/catalog/table1.tsv"
    conda:
        "../../envs/catalog.yaml"
    script:
        "../scripts/catalog_table1.py"


rule check_catalog:
    input:
        catalog=external_catalog() or catalog_dataset(),  # the user's file as given, before its import
        schema=CATALOG_SCHEMA,
        code=code_inputs("../scripts/catalog_check.py"),
    output:
        f"{CAT}/check.json",
    params:
        order=None if external_catalog() else config["catalog"]["healpix_order"],
        external=bool(external_catalog()),
    log:
        f"{RESULTS}/logs/catalog/check_catalog.log",
    benchmark:
        f"{RESULTS}/benchmarks/catalog/check_catalog.tsv"
    conda:
        "../../envs/catalog.yaml"
    script:
        "../scripts/catalog_check.py"
