"""Writing a generated shop into a source database, atomically."""

from __future__ import annotations

from recpipe.adapters.base import Progress, SourceDatabase
from recpipe.source.generate import Shop
from recpipe.source.schema import TABLE_ORDER


def write_shop(db: SourceDatabase, shop: Shop, *, replace: bool = False,
               progress: Progress | None = None) -> dict[str, int]:
    """Create the classicmodels + ratings tables and bulk-load the shop; all or nothing."""
    with db.build(replace=replace, fresh=True, tables=TABLE_ORDER) as loader:
        loader.create_tables(TABLE_ORDER, indexes=False)
        for name in TABLE_ORDER:
            loader.bulk_insert(name, shop.tables[name], progress)
        loader.create_indexes(TABLE_ORDER)
    return shop.counts()
