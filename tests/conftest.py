"""Set-up shared by every test folder."""

from loc2.core.model.runtime import make_cpu_reproducible

# MKL's strict reproducibility mode takes effect only if it is set before MKL first runs in a process, and the
# tests compare poses computed in this process with poses from fresh processes (the CLI, the worker, Ray
# actors): set it before any test does arithmetic, as `loc2` does before loading its first model.
make_cpu_reproducible()
