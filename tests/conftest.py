import os

# CPython 3.11.7 miscounts the recursion depth when `ast.parse` runs deep in a stack (gh-106905, fixed
# in 3.11.8): pytest's assertion rewriter parses this hypothesis module when `st.randoms()` first
# imports it, inside a deep hypothesis call, and fails with "AST constructor recursion depth
# mismatch". Importing it here, at a shallow stack, sidesteps the interpreter bug.
import hypothesis.strategies._internal.random  # noqa: F401
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")
