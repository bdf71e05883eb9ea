"""The ``remote`` archive backend: queries the real archives chunk by chunk into a resumable raw cache.

* :mod:`.services` — one :class:`~.services.QuerySpec` per archive table (service, URL, remote table, ADQL per
  chunk kind, column mapping to the names of :data:`ddstars.archives.TABLES`) and the ``remote:`` config section;
* :mod:`.client` — :class:`~.client.TapClient`: pyvo TAP (sync/async, uploads) with retries, back-off, a
  per-service concurrency limit across processes and overflow detection; plus plain HTTP file downloads;
* :mod:`.cache` — :class:`~.cache.ChunkCache`: ``<root>/<table>/<chunk_id>.parquet`` + ``.json`` sidecar;
* :mod:`.fetch` — :func:`~.fetch.chunk_ids`, :func:`~.fetch.fetch_chunk`, :func:`~.fetch.assemble`.
"""
