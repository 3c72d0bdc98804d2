"""Store backends: where versioned bundles live.

One small interface (:class:`~wfctl.store.base.Store`) with two
implementations: a local directory (the embedded default) and S3 (or any
S3-compatible server). Everything above it (bundles, publish, plan, overrides)
speaks only this interface, so both backends behave the same by construction.
"""
