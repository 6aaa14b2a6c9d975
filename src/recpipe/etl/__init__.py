"""ETL stage: source database -> ``<lake>/ratings_ml_training`` (``recpipe.contracts.dataset``).

``pipeline.run`` is the entry point: it stages, checks and swaps the result into the lake with
its manifest. ``extract`` streams the source into Arrow; ``transform`` holds the one SQL both
engines run; ``duckdb_engine`` and ``spark_engine`` run it.

``online.run`` builds the online datasets (``recpipe.contracts.activity``) from the
recommendations sink: ``lines`` turns one delivered or served line into rows, ``candidates``
a batch of objects into one Arrow table, and both engines keep rows by the SQL in ``online``.
"""
