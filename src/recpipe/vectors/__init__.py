"""The vector database: embeddings in PostgreSQL + pgvector (tables: ``recpipe.contracts.vectors``,
kept in step with ``sql/embeddings.sql`` by a test).

``pipeline.run`` (``recpipe vectors load``) swaps a new set in atomically; ``files`` reads and
checks the artifacts' CSVs; ``catalog`` reads the shop's catalog and purchases from the source;
``query`` is the similarity API that the inference service and the streaming handler share.
"""
