"""Media: decoding and features for the paper datasets.

Audio (`mmcoop.media.audio`), frames (`mmcoop.media.frames`), clip sources
(`mmcoop.media.clips`), the memory-mapped frame cache (`mmcoop.media.frame_cache`)
and raw videos to a dataset layout (`mmcoop.media.prepare`, ``mmcoop data prepare``).
"""
