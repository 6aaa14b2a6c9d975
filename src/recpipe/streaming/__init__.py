"""The streaming path: user activity → stream → Firehose-style delivery with the
transformation → enriched records in the recommendations sink, by hour.

``pipeline.run`` is the stage's entry point (the delivery); ``produce`` simulates shoppers
onto the stream; ``transform`` is the Firehose transformation Lambda, ``enrich`` what it asks
of the model and pgvector; ``deliver`` is Firehose itself, locally. The event and the enriched
record are ``recpipe.contracts.events``. Nothing here imports training.
"""
