"""One Beam transform per step, in data-flow order:

read -> normalize -> dedupe -> language -> topics -> write

Each module holds a pure core (plain functions over plain dict records) and a
thin ``PTransform`` around it. ``common`` holds what every step shares: the run
context, dead letters and stable hashing.
"""
