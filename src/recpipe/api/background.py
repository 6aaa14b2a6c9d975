"""The HTTP service on a background thread of this process: for `recpipe demo` and tests that
want a real server without a child process. Production runs `recpipe serve`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from recpipe.errors import ServiceError, require


@contextmanager
def serving(app: Any, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn until the block ends; yields the base URL (port 0: any free port)."""
    uvicorn = require("uvicorn", "serve", "The HTTP service")
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="recpipe-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ServiceError(f"the HTTP service did not start on {host}:{port}",
                               hint="is the port free? see the log above")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)
