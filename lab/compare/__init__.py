"""Compare 2-12 runs: the set, the pipeline that opens it, the tab's service and the standalone report.

``set``         which runs, their effective requests, labels and what differs (pure, reads the journal)
``proxies``     light playback copies, cached in ``proxies/``
``similarity``  SSIM of every pair, cached in ``similarity/``
``pipeline``    opening a set: the set, its proxies and (when asked) its similarity figures
``service``     the Compare tab's back end (open, measure, review, ZIP), gradio-free
``report``      writing the standalone report (HTML + media + compare.json) and its ZIP only

Nothing is re-exported here: import from the module that owns a name.
"""
