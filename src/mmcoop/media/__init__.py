"""Media: decoding and features for the paper datasets.

Audio (:mod:`mmcoop.media.audio`), frames (:mod:`mmcoop.media.frames`), clip sources
(:mod:`mmcoop.media.clips`), the memory-mapped frame cache (:mod:`mmcoop.media.frame_cache`)
and raw videos to a dataset layout (:mod:`mmcoop.media.prepare`, ``mmcoop data prepare``).
"""
