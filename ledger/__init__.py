"""The pure core of Commons: codec, keys and signatures, records, feeds, blocks, Merkle log, audit.

`ledger` imports none of `governance`, `node` or `cli`. Only `store.py` (SQLite) and `files.py`
(key files and bundles) touch the disk.
"""
