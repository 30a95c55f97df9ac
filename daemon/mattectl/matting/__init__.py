"""The one per-photo path: decode -> facts (probe) -> decide -> infer -> refine -> encode ->
write. The daemon, ``mattectl process``, ``mattectl bench`` and ``mattectl eval`` all call it
(:class:`~mattectl.matting.pipeline.PhotoPipeline`)."""
