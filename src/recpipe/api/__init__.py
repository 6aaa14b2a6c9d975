"""The HTTP inference service (FastAPI): the seed's endpoints and the rich recommendation
endpoint, health/readiness/metrics; the same app runs under uvicorn and as a Lambda."""
