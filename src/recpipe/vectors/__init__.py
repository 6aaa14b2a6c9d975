"""The vector database: embeddings in PostgreSQL + pgvector (tables: ``recpipe.contracts.vectors``).

``recpipe.contracts.vectors`` is the DDL (kept in step with ``sql/embeddings.sql`` by a test); ``files`` reads
and checks the artifacts' CSVs, ``load`` swaps a new set in atomically, ``query`` is the
similarity API that the inference service and the streaming handler share.
"""
