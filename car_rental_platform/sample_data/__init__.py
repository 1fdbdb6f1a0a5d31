"""Deterministic sample raw CSVs for the car-rental lake, with bad rows planted on purpose.

Tests of the cleaning job need inputs whose every rejection is known in advance: each planted
row breaks exactly one rule of the data contract (DESIGN.md section 3) and
``SampleSummary.planted`` counts them per (table, reason), so a test can demand that the job
rejects exactly those rows. The same seed and arguments give byte-identical files.

    python -m car_rental_platform.sample_data --out DIR [--rentals N] [--seed S] [--no-bad-rows]
        [--daily]
"""
