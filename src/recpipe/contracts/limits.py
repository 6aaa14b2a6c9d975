"""Bounds shared by the API, the CLI and the vector queries."""

from __future__ import annotations

MAX_K = 1000  # items per answer (API ``limit``/``k``, CLI ``-k``, one vector query)
MAX_BATCH = 1000  # users per ``POST /user_embeddings``
MAX_EF_SEARCH = 1000  # pgvector's limit on hnsw.ef_search
DEFAULT_EF_SEARCH = 40  # pgvector's default
S3_DELETE_BATCH = 1000  # keys per S3 DeleteObjects call (the API's limit)
