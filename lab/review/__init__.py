"""Review that comes back: comments pinned to a moment, drawings, a status per take.

``model`` is pure (the review file's schema, its validation, merging, time
codes, the CSV); ``journal`` keeps comments and status events in the journal.
"""
