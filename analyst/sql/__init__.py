"""SQL shipped with the package: ``views.sql``, the analyst views rendered by :mod:`analyst.views`."""
