"""The rules: facts about an image, rule presets, and ``decide(facts, rules) -> Decision``.

Pure: no models, no database, no files beyond reading the preset TOMLs. The caller hands
``decide`` every fact (the subject from the U²-Net backend's probe, which models can run, the
latencies learned from the job log): see ``mattectl.matting.planner``. Importing this package
imports neither torch, tensorflow nor OpenCV (a test proves it).
"""
