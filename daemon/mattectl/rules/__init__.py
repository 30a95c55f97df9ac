"""The rules engine: facts about an image, rule presets, and ``decide(facts, rules) -> Decision``.

``facts``, ``schema``, ``engine``, ``crop`` and ``latency`` are pure; ``probe``, ``presets`` and
``planner`` touch models and files. Importing this package imports neither torch nor tensorflow.
"""
