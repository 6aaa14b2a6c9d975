"""The service's endpoints, one router per resource: the seed's endpoints, recommendations,
customers and products, operations, and the page. ``recpipe.api.app`` includes them all."""

from __future__ import annotations

from recpipe.api.routes import operations, page, recommendations, seed, shop

ROUTERS = (seed.router, recommendations.router, operations.router, shop.router, page.router)
