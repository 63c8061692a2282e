"""The only place that touches private names of Timestep's dependencies.

Each module holds the hooks into one dependency, with what it relies on, so that an upgrade
of that dependency breaks one named file (and the test that pins the behaviour).
"""
