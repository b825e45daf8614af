"""The pre-screen: every saved take checked for visible faults with ffmpeg's own filters, no model weights.

``findings`` (what was found, badges, thresholds), ``detectors`` (the filtergraph
and the reading of its output), ``run`` (one ffmpeg run: detectors + proxy),
``background`` (the queue that screens each saved take and journals it).
Import from the module that owns a name.
"""
