"""Bounds shared by the API, the CLI and the vector queries."""

from __future__ import annotations

MAX_K = 1000  # items per answer (API ``limit``/``k``, CLI ``-k``, one vector query)
MAX_BATCH = 1000  # users per ``POST /user_embeddings``
MAX_EF_SEARCH = 1000  # pgvector's limit on hnsw.ef_search
DEFAULT_EF_SEARCH = 40  # pgvector's default
MAX_CUSTOMER_NUMBER = 2**31 - 1  # customerNumber is an INT in the source and in user_emb
MAX_CREDIT_LIMIT = 99_999_999.99  # creditLimit is DECIMAL(10,2) in the source
NO_NUL = r"^[^\x00]*$"  # text PostgreSQL can store: no NUL character
# A product code in a request (classicmodels: VARCHAR(15)); lists stay short enough that a URL
# carrying them passes the HTTP server's request-line limit.
CODE_LENGTH = 32
MAX_LISTED = 100
S3_DELETE_BATCH = 1000  # keys per S3 DeleteObjects call (the API's limit)

# AWS limits the streaming path keeps (Kinesis Data Streams and Firehose)
KINESIS_MAX_RECORD_BYTES = 1024 * 1024  # one record's data (and partition key)
KINESIS_PUT_MAX_RECORDS = 500  # records per PutRecords call
KINESIS_PUT_MAX_BYTES = 5 * 1024 * 1024  # bytes per PutRecords call
FIREHOSE_LAMBDA_MAX_BYTES = 6_000_000  # a transformation Lambda's request and response
FIREHOSE_LAMBDA_RETRIES = 3  # a failed invocation is retried this many times

# The session store (recpipe.vectors.sessions): recent activity per customer and per session
MAX_RECENT = 20  # products kept per customer or session, newest first; older ones are dropped
RECENT_TTL_S = {"customer": 7 * 86_400, "session": 86_400}  # how long a product stays recent after it was recorded
