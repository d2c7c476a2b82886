"""A Clarity simulator: Data Export API, recordings list and the tracker's upload endpoint."""

from supportlens_sandbox.clarity.simulator import ClaritySimState, SimSession, create_clarity_simulator

__all__ = ["ClaritySimState", "SimSession", "create_clarity_simulator"]
