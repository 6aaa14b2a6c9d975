"""The page ``recpipe serve`` shows at ``/``: customers, products, the live stream and the
pipeline's state, as static files (``static/``) that call the service's JSON endpoints; the
endpoints only the page needs live here too (``routes``), with their queries (``shop``) and
the pipeline's state (``status``)."""
