"""The contracts every stage keeps, each defined once and imported wherever it is used.

- ``source``: the shop's tables (the classicmodels sample database plus ``ratings``).
- ``dataset``: the training dataset the ETL writes to the lake and training reads.
- ``artifacts``: where training publishes the model, its embeddings and its manifest.
- ``vectors``: the vector database's tables and indexes, and a scored result.
- ``limits``: the bounds the API, the CLI and the vector queries share.

"The seed" in the code and docs means the AWS reference architecture recpipe grew from (a
MySQL source on RDS, a Glue ETL job, a two-tower model, PostgreSQL + pgvector on RDS,
Kinesis → Firehose → a transformation Lambda → S3). recpipe keeps its table names, its
``ml-artifacts`` layout, its ``sql/embeddings.sql`` tables and its HTTP endpoints, so that
the seed's own clients work against recpipe unchanged.

This package imports nothing from recpipe but ``recpipe.errors``; everything else may import it.
"""
